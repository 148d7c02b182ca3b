#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Resource figures of this process, for memory-budget and CPU checks in tests and benchmarks.
public enum ProcessStats {
    /// Peak resident set size so far, in bytes (getrusage's ru_maxrss).
    public static func peakRSSBytes() -> Int {
        var usage = rusage()
        #if canImport(Glibc)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        return Int(usage.ru_maxrss) * 1024
        #else
        getrusage(RUSAGE_SELF, &usage)
        return Int(usage.ru_maxrss)
        #endif
    }

    /// CPU seconds this process has used so far, all threads (CLOCK_PROCESS_CPUTIME_ID).
    public static func cpuSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// Current resident set size in bytes (from /proc/self/statm on Linux; peak RSS elsewhere).
    public static func currentRSSBytes() -> Int {
        #if os(Linux)
        if let f = fopen("/proc/self/statm", "r") {
            defer { fclose(f) }
            var size = 0, resident = 0
            if withUnsafeMutablePointer(to: &size, { s in withUnsafeMutablePointer(to: &resident) { r in
                fscanfStatm(f, s, r) }}) == 2 {
                return resident * Int(sysconf(Int32(_SC_PAGESIZE)))
            }
        }
        #endif
        return peakRSSBytes()
    }

    #if os(Linux)
    private static func fscanfStatm(_ f: UnsafeMutablePointer<FILE>, _ size: UnsafeMutablePointer<Int>, _ resident: UnsafeMutablePointer<Int>) -> Int {
        var buf = [CChar](repeating: 0, count: 128)
        guard fgets(&buf, 128, f) != nil else { return 0 }
        let parts = String(cString: buf).split(separator: " ")
        guard parts.count >= 2, let s = Int(parts[0]), let r = Int(parts[1]) else { return 0 }
        size.pointee = s; resident.pointee = r
        return 2
    }
    #endif
}
