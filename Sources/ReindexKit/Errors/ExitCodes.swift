import Foundation

/// Process exit codes, documented in README.md ("Exit codes"). Values follow
/// BSD `sysexits.h` so shell scripts and systemd units can tell failures apart.
public enum ExitCodes {
    public static let success: Int32 = 0
    /// The new file was published, but some rows could not be embedded.
    public static let partial: Int32 = 3
    public static let usage: Int32 = 64
    public static let dataError: Int32 = 65
    public static let noInput: Int32 = 66
    public static let unavailable: Int32 = 69
    public static let software: Int32 = 70
    /// The job does not match the model server (EX_CONFIG): fix the job file.
    public static let config: Int32 = 78
    public static let cantCreate: Int32 = 73
    public static let ioError: Int32 = 74
    public static let tempFail: Int32 = 75
    public static let sigint: Int32 = 130
    public static let sigterm: Int32 = 143
}
