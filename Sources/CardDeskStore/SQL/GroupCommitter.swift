import CardDeskCore
import SQLKit
import Synchronization

/// Group commit: transactions that arrive while a commit is in progress share the next one.
///
/// One writer takes every transaction waiting (up to `maximumBatch`), runs their bodies one after another inside one
/// database transaction, commits once, and only then answers each caller: nothing is acknowledged before the commit
/// that makes it durable, and a failed commit fails every transaction of the batch (none of them is written).
/// The bodies run in arrival order on one connection, each seeing the writes of those before it, exactly as if they
/// had committed one by one; only the disk flush is shared.
///
/// A body that throws (a refusal: a duplicate, a stale version) must leave nothing, and must be judged on committed
/// state: the batch is rolled back, the bodies before it run again and commit, and the refused body then runs first
/// in the next transaction, where its error (if it throws again) is the caller's answer. Bodies only touch the
/// database, so running one again is safe; refusals are rare, so this costs less than a savepoint per body.
final class GroupCommitter: Sendable {
    /// One caller's transaction.
    struct Job: Sendable {
        let durable: Bool
        /// Runs the body: what answers the caller once the batch is committed (or failed), or the body's error.
        let run: @Sendable (any SQLDatabase) async -> Result<@Sendable ((any Error)?) -> Void, any Error>
        /// Answers the caller with an error.
        let fail: @Sendable (any Error) -> Void
    }

    /// What one attempt at a batch came to: the answers of the bodies that ran, and the first refusal, if any.
    struct Outcome: Sendable {
        var answers: [@Sendable ((any Error)?) -> Void] = []
        var refusal: (index: Int, error: any Error)?
    }

    /// Lends the connection a batch runs on; the committer sends BEGIN and COMMIT.
    typealias Connection = @Sendable (@escaping @Sendable (any SQLDatabase) async throws -> Outcome) async throws -> Outcome

    private struct State {
        var queue: [Job] = []
        var draining = false
    }

    private let state = SharedMutex(State())
    private let connection: Connection
    private let begin: String
    /// Statements before BEGIN for a batch, by whether it must be durable (SQLite's `synchronous`).
    private let prepare: @Sendable (_ durable: Bool) -> String?
    /// Statements right after BEGIN, by durability (PostgreSQL's `SET LOCAL synchronous_commit`).
    private let setup: @Sendable (_ durable: Bool) -> String?
    let maximumBatch: Int
    /// Transactions and commits so far: their ratio is how many transactions shared each flush.
    private let transactionCount = Atomic<Int>(0)
    private let commitCount = Atomic<Int>(0)

    init(
        maximumBatch: Int = 128, begin: String,
        prepare: @escaping @Sendable (Bool) -> String? = { _ in nil },
        setup: @escaping @Sendable (Bool) -> String? = { _ in nil },
        connection: @escaping Connection
    ) {
        self.maximumBatch = maximumBatch
        self.begin = begin
        self.prepare = prepare
        self.setup = setup
        self.connection = connection
    }

    var statistics: (transactions: Int, commits: Int) {
        (transactionCount.load(ordering: .relaxed), commitCount.load(ordering: .relaxed))
    }

    /// Runs `body` in the next batch; returns its result once the batch's commit is durable.
    func transaction<R: Sendable>(durable: Bool, _ body: @escaping @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<R, any Error>) in
            let job = Job(
                durable: durable,
                run: { db in
                    do {
                        let result = try await body(db)
                        return .success({ error in
                            if let error { continuation.resume(throwing: error) } else { continuation.resume(returning: result) }
                        })
                    } catch {
                        return .failure(error)
                    }
                },
                fail: { continuation.resume(throwing: $0) }
            )
            let start = state.withLock { state in
                state.queue.append(job)
                guard !state.draining else { return false }
                state.draining = true
                return true
            }
            if start { Task { await self.drain() } }
        }
    }

    private func drain() async {
        while true {
            let batch: [Job] = state.withLock { state in
                guard !state.queue.isEmpty else {
                    state.draining = false
                    return []
                }
                let count = min(state.queue.count, maximumBatch)
                defer { state.queue.removeFirst(count) }
                return Array(state.queue.prefix(count))
            }
            if batch.isEmpty { return }
            await commit(batch)
        }
    }

    /// Runs and commits `batch`; answers every job of it.
    private func commit(_ batch: [Job]) async {
        var pending = batch[...]
        while !pending.isEmpty {
            // Run the jobs in order; stop at the first refusal.
            let durable = pending.contains(where: \.durable)
            let jobs = pending
            let outcome: Outcome
            do {
                outcome = try await connection { connection in
                    // What the batch's transactions share until COMMIT (the audit chain's head) is kept here.
                    let db = BatchDatabase(connection)
                    var outcome = Outcome()
                    if let prepare = self.prepare(durable) { try await db.raw(SQLQueryString(prepare)).run() }
                    try await db.raw(SQLQueryString(self.begin)).run()
                    do {
                        if let setup = self.setup(durable) { try await db.raw(SQLQueryString(setup)).run() }
                        for (offset, job) in jobs.enumerated() {
                            switch await job.run(db) {
                            case .success(let answer):
                                outcome.answers.append(answer)
                            case .failure(let error):
                                outcome.refusal = (offset, error)
                                try await db.raw("ROLLBACK").run()
                                return outcome
                            }
                        }
                        try await db.finish()
                        try await db.raw("COMMIT").run()
                        return outcome
                    } catch {
                        try? await db.raw("ROLLBACK").run()
                        throw error
                    }
                }
            } catch {
                // The database failed (not a body): nothing of these jobs is written, and every caller hears so.
                for job in pending { job.fail(error) }
                count(pending.count)
                return
            }
            guard let refusal = outcome.refusal else {
                count(pending.count)
                for answer in outcome.answers { answer(nil) }
                return
            }
            if refusal.index == 0 {
                // Refused on committed state: that is its answer; nothing of it was written.
                let refused = pending.removeFirst()
                count(1)
                refused.fail(refusal.error)
            } else {
                // Rolled back: the jobs before it run again (and commit) without it; it then runs first.
                let before = pending.prefix(refusal.index)
                let after = pending.dropFirst(refusal.index)
                await commit(Array(before))
                pending = after
            }
        }
    }

    private func count(_ transactions: Int) {
        transactionCount.add(transactions, ordering: .relaxed)
        commitCount.add(1, ordering: .relaxed)
    }
}
