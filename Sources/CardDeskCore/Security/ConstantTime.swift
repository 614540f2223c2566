/// Comparing secrets (tokens, CSRF values, code hashes) without leaking, through timing, how much of a guess was right.
public enum ConstantTime {
    /// Whether `a` and `b` are the same bytes; the time taken depends only on their lengths.
    public static func equal(_ a: String, _ b: String) -> Bool {
        equal(Array(a.utf8), Array(b.utf8))
    }

    /// Whether `x` and `y` are the same bytes; the time taken depends only on their lengths.
    public static func equal(_ x: [UInt8], _ y: [UInt8]) -> Bool {
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }
}
