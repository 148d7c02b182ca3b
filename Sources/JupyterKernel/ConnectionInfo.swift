import Workbench
import Foundation

/// The connection file Jupyter writes for a kernel: where to bind the five sockets and the signing key.
public struct ConnectionInfo: Sendable, Equatable {
    public var transport: String
    public var ip: String
    public var shellPort: Int
    public var iopubPort: Int
    public var stdinPort: Int
    public var controlPort: Int
    public var hbPort: Int
    public var key: String
    public var signatureScheme: String

    public init(transport: String = "tcp", ip: String = "127.0.0.1", shellPort: Int, iopubPort: Int, stdinPort: Int,
                controlPort: Int, hbPort: Int, key: String, signatureScheme: String = "hmac-sha256") {
        self.transport = transport; self.ip = ip
        self.shellPort = shellPort; self.iopubPort = iopubPort; self.stdinPort = stdinPort
        self.controlPort = controlPort; self.hbPort = hbPort
        self.key = key; self.signatureScheme = signatureScheme
    }

    public static func load(path: String) throws -> ConnectionInfo {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw KernelSetupError("cannot read connection file \(path): \(error.localizedDescription)")
        }
        do { return try parse(Array(data)) } catch let error as KernelSetupError {
            throw KernelSetupError("connection file \(path): \(error.message)")
        }
    }

    public static func parse(_ bytes: [UInt8]) throws -> ConnectionInfo {
        let json: JSON
        do { json = try JSON.parse(bytes) } catch { throw KernelSetupError(error.description) }
        guard json.isObject else { throw KernelSetupError("expected a JSON object") }
        func port(_ name: String) throws -> Int {
            guard let value = json[name] else { throw KernelSetupError("missing '\(name)'") }
            guard let p = value.intValue, (0...65535).contains(p) else {
                throw KernelSetupError("'\(name)' must be a port number 0…65535, found \(value.serialized)")
            }
            return p
        }
        let scheme = json["signature_scheme"]?.stringValue ?? "hmac-sha256"
        guard scheme == "hmac-sha256" || (json["key"]?.stringValue ?? "").isEmpty else {
            throw KernelSetupError("unsupported signature_scheme '\(scheme)' (only hmac-sha256)")
        }
        let transport = json["transport"]?.stringValue ?? "tcp"
        guard transport == "tcp" || transport == "ipc" else {
            throw KernelSetupError("unsupported transport '\(transport)' (tcp or ipc)")
        }
        return ConnectionInfo(
            transport: transport, ip: json["ip"]?.stringValue ?? "127.0.0.1",
            shellPort: try port("shell_port"), iopubPort: try port("iopub_port"), stdinPort: try port("stdin_port"),
            controlPort: try port("control_port"), hbPort: try port("hb_port"),
            key: json["key"]?.stringValue ?? "", signatureScheme: scheme)
    }

    /// `tcp://ip:port`, or `ipc://ip-port` for the ipc transport (as jupyter_client and xeus spell it).
    public func endpoint(port: Int) -> String {
        transport == "ipc" ? "ipc://\(ip)-\(port)" : "tcp://\(ip):\(port == 0 ? "*" : String(port))"
    }
}

public struct KernelSetupError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
