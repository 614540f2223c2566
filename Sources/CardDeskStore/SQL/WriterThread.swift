import Foundation

/// A thread of its own for the SQLite writer: the group committer runs each batch on it as a task executor, so the
/// batch's bodies, its statements and its `COMMIT` (which waits for the disk) run one after another on this thread,
/// without a hop per statement and without waiting for a turn on the cooperative threads, which the callers keep
/// busy with signing and parsing. Blocking here (the disk flush, another process's lock) holds up only the writer.
final class WriterThread: TaskExecutor, @unchecked Sendable {
    // Guarded by `condition`.
    private var jobs: [UnownedJob] = []
    private var stopping = false
    private let condition = NSCondition()
    private var thread: Thread?

    init(name: String) {
        // The thread holds this object until `stop()`.
        let thread = Thread { self.loop() }
        thread.name = name
        self.thread = thread
        thread.start()
    }

    /// Whether the caller is running on this thread.
    var isCurrent: Bool { Thread.current === thread }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread once the jobs already given to it have run.
    func stop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            let ready = jobs
            jobs.removeAll(keepingCapacity: true)
            let done = stopping && ready.isEmpty
            condition.unlock()
            if done { return }
            for job in ready { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}
