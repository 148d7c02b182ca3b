import Workbench

/// The control channel, served on its own thread so shutdown and interrupt are answered while a command runs.
/// Touches only Sendable state: the kernel state, the messenger, the precomputed kernel_info.
public struct ControlHandler: Sendable {
    let messenger: KernelMessenger
    let state: KernelState
    let kernelInfo: JSON

    public init(messenger: KernelMessenger, state: KernelState, kernelInfo: JSON) {
        self.messenger = messenger
        self.state = state
        self.kernelInfo = kernelInfo
    }

    public func handle(_ message: WireMessage) {
        KernelLog.debug("control: \(message.msgType) \(message.msgID)")
        if messenger.refuseIfUnreadable(message, on: .control) { return }
        switch message.msgType {
        case "shutdown_request", "interrupt_request", "kernel_info_request":
            messenger.whileBusy(message) {
                Self.handleControlRequest(message, on: .control, messenger: messenger, state: state,
                                          kernelInfo: kernelInfo)
            }
        default:
            messenger.refuseUnknown(message, on: .control)
        }
    }

    static func handleControlRequest(_ message: WireMessage, on channel: KernelChannel, messenger: KernelMessenger,
                                     state: KernelState, kernelInfo: JSON) {
        switch message.msgType {
        case "shutdown_request":
            let restart = message.content["restart"]?.boolValue ?? false
            KernelLog.info("shutdown requested\(restart ? " (restart)" : "")")
            messenger.reply(to: message, ["status": "ok", "restart": .bool(restart)], on: channel)
            state.requestStop(restart: restart)
        case "interrupt_request":
            state.interrupt(source: "interrupt_request")
            messenger.reply(to: message, ["status": "ok"], on: channel)
        case "kernel_info_request":
            messenger.reply(to: message, kernelInfo, on: channel)
        default:
            break
        }
    }
}
