import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// An error for a request that does not fit the machine: the message names the request and both figures.
public struct ResourceError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Checks sizes from commands and files against the memory and disk there are, before anything is allocated or
/// written, so a mistyped `features=1e15` is an error that says how much it asked for, not a dead process.
public enum ResourceBudget {
    /// Bytes of memory available to a new allocation (MemAvailable of /proc/meminfo; physical memory elsewhere).
    public static func availableMemoryBytes() -> Int {
        #if os(Linux)
        if let text = try? String(contentsOfFile: "/proc/meminfo", encoding: .utf8),
           let line = text.split(separator: "\n").first(where: { $0.hasPrefix("MemAvailable:") }),
           let kb = Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") {
            return kb * 1024
        }
        #endif
        return Int(clamping: ProcessInfo.processInfo.physicalMemory)
    }

    /// Free bytes on the file system that holds `path` (or its nearest existing ancestor).
    public static func availableDiskBytes(near path: String) -> Int? {
        var dir = URL(fileURLWithPath: path).standardizedFileURL
        while !FileManager.default.fileExists(atPath: dir.path) && dir.path != "/" { dir.deleteLastPathComponent() }
        var s = statvfs()
        guard statvfs(dir.path, &s) == 0 else { return nil }
        return Int(clamping: UInt64(s.f_bavail).multipliedReportingOverflow(by: UInt64(s.f_frsize)).partialValue)
    }

    /// The byte count of `counts` elements of `bytesEach`, or an error naming `what` when it overflows.
    public static func bytes(_ counts: [Int], bytesEach: Int, what: String) throws -> Int {
        guard let n = CheckedSize.product(counts + [bytesEach]) else {
            throw ResourceError("\(what): \(counts.map(String.init).joined(separator: " × ")) elements is too large to address")
        }
        return n
    }

    /// Throws unless `bytes` fit in the memory available now.
    public static func checkMemory(_ bytes: Int, for what: String) throws {
        let available = availableMemoryBytes()
        guard bytes <= available else {
            throw ResourceError("\(what) needs \(formatBytes(bytes)) of memory, but \(formatBytes(available)) is available")
        }
    }

    /// Throws unless `bytes` fit on the disk that would hold `path`.
    public static func checkDisk(_ bytes: Int, at path: String, for what: String) throws {
        guard let free = availableDiskBytes(near: path) else { return }
        guard bytes <= free else {
            throw ResourceError("\(what) needs up to \(formatBytes(bytes)) of disk at \(path), but the disk has \(formatBytes(free)) free")
        }
    }

    public static func formatBytes(_ n: Int) -> String {
        let units = ["bytes", "KB", "MB", "GB", "TB", "PB", "EB"]
        var v = Double(n), u = 0
        while v >= 1000 && u < units.count - 1 { v /= 1000; u += 1 }
        return u == 0 ? "\(n) bytes" : String(format: v < 10 ? "%.1f %@" : "%.0f %@", v, units[u])
    }
}

/// Replacing a folder so that every moment leaves either the old contents or the complete new ones: the new
/// contents are built in a hidden temporary sibling (same file system, so renames are atomic), then exchanged with
/// the old folder in one `renameat2(RENAME_EXCHANGE)`, and the old contents are removed afterwards.
public enum AtomicDirectory {
    /// A new, empty, hidden sibling of `path` to build its replacement in.
    public static func makeStagingSibling(of path: String) throws -> String {
        let url = URL(fileURLWithPath: path).standardizedFileURL
        let parent = url.deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: parent, withIntermediateDirectories: true) } catch {
            throw TensorFileError(path: path, "cannot create folder \(parent.path): \(error.localizedDescription)")
        }
        removeAbandonedStaging(of: url.lastPathComponent, in: parent.path)
        let staging = parent.appendingPathComponent(".\(url.lastPathComponent).partial-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
        do { try FileManager.default.createDirectory(at: staging, withIntermediateDirectories: false) } catch {
            throw TensorFileError(path: path, "cannot create a temporary folder beside it: \(error.localizedDescription)")
        }
        return staging.path
    }

    /// Staging folders of `name` left by processes that no longer run (killed mid-write): only nsae's own hidden
    /// `.NAME.partial-PID-…` siblings, and only when process PID is gone.
    static func removeAbandonedStaging(of name: String, in parent: String) {
        let prefix = ".\(name).partial-"
        for entry in (try? FileManager.default.contentsOfDirectory(atPath: parent)) ?? [] where entry.hasPrefix(prefix) {
            guard let pid = Int32(entry.dropFirst(prefix.count).prefix { $0 != "-" }), pid != getpid() else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH {
                try? FileManager.default.removeItem(atPath: (parent as NSString).appendingPathComponent(entry))
            }
        }
    }

    /// Puts the complete folder `staging` at `path`. If `path` exists it is exchanged atomically and its old contents
    /// removed; readers that had it open keep their open files.
    public static func swapIn(_ staging: String, at path: String) throws {
        let target = URL(fileURLWithPath: path).standardizedFileURL.path
        if !FileManager.default.fileExists(atPath: target) {
            guard rename(staging, target) == 0 else {
                throw TensorFileError(path: path, "cannot move the new folder into place: \(String(cString: strerror(errno)))")
            }
            return
        }
        if exchange(staging, target) {
            try? FileManager.default.removeItem(atPath: staging)   // now holds the old contents
            return
        }
        // No atomic exchange on this file system: move the old folder aside first; it stays until the new one is in.
        let aside = staging + ".old"
        guard rename(target, aside) == 0 else {
            throw TensorFileError(path: path, "cannot move the old folder aside: \(String(cString: strerror(errno)))")
        }
        guard rename(staging, target) == 0 else {
            let reason = String(cString: strerror(errno))
            _ = rename(aside, target)
            throw TensorFileError(path: path, "cannot move the new folder into place: \(reason)")
        }
        try? FileManager.default.removeItem(atPath: aside)
    }

    private typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32

    /// renameat2(…, RENAME_EXCHANGE), looked up at run time: Glibc's Swift overlay does not declare it.
    private static func exchange(_ a: String, _ b: String) -> Bool {
        #if os(Linux)
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "renameat2") else { return false }
        let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
        let renameExchange: UInt32 = 1 << 1
        return renameat2(AT_FDCWD, a, AT_FDCWD, b, renameExchange) == 0
        #else
        return false
        #endif
    }
}

/// File names taken from data (hook names, tensor keys, cfg fields, manifest entries) become exactly one path
/// component: never a way to write outside the folder meant.
public enum PathComponent {
    /// Whether `name` is a plain file name: not empty, not `.` or `..`, no `/` or NUL.
    public static func isSafe(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\0")
    }

    /// `name` made into one safe component: `/` and NUL become `_`, leading dots become `_`, an empty name `_`.
    public static func sanitized(_ name: String) -> String {
        var s = String(name.map { $0 == "/" || $0 == "\0" || $0 == "\\" ? "_" : $0 })
        while s.hasPrefix(".") { s = "_" + s.dropFirst() }
        return s.isEmpty ? "_" : s
    }
}

/// `pread` until `count` bytes are in, retrying interrupted calls; a short file is an error naming the byte.
public enum PositionalRead {
    public static func readAll(fd: Int32, _ dst: UnsafeMutableRawPointer, count: Int, offset: Int, path: String) throws {
        var done = 0
        while done < count {
            let n = pread(fd, dst + done, count - done, off_t(offset + done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw TensorFileError(path: path, "read failed at byte \(offset + done) (file truncated?)") }
            done += n
        }
    }
}

extension KeyedDecodingContainer {
    /// An integer field that must be a whole number fitting `Int`. Foundation's decoder reports 16.7 or 1e30 for an
    /// `Int` as "not valid JSON" with no field; this names the field and the value.
    public func decodeWholeNumber(forKey key: Key) throws -> Int {
        if let n = try? decode(Int.self, forKey: key) { return n }
        if let d = try? decode(Double.self, forKey: key) {
            throw DecodingError.dataCorruptedError(forKey: key, in: self, debugDescription: "\(d) is not a whole number that fits 64 bits")
        }
        return try decode(Int.self, forKey: key)   // missing or not a number: Foundation's own error names it
    }

    public func decodeWholeNumberIfPresent(forKey key: Key) throws -> Int? {
        guard contains(key), (try? decodeNil(forKey: key)) != true else { return nil }
        return try decodeWholeNumber(forKey: key)
    }
}
