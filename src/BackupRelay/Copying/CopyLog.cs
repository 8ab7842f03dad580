using Microsoft.Extensions.Logging;

namespace BackupRelay.Copying;

/// <summary>The copy engine's log events (ids 30-39: operators' alerts name them), for every part of it.</summary>
internal static partial class CopyLog
{
    [LoggerMessage(30, LogLevel.Information, "{Path} is already copied and verified in {Destination}")]
    public static partial void AlreadyComplete(ILogger logger, string path, string destination);

    [LoggerMessage(31, LogLevel.Information, "{Path}: slice ends at {Offset} of {Size} bytes; continuing later")]
    public static partial void SliceDone(ILogger logger, string path, long offset, long size);

    [LoggerMessage(32, LogLevel.Information, "{Path} copied to {Destination}: {Size} bytes verified (hashes recomputed: {Recomputed})")]
    public static partial void Completed(ILogger logger, string path, string destination, long size, bool recomputed);

    [LoggerMessage(38, LogLevel.Warning, "{Path} copied to {Destination}: {Size} bytes stored as received, NOT verified against the source " +
        "(it declares no checksum usable for this file; Copy__VerifyBySecondRead=true reads it twice)")]
    public static partial void CompletedUnverified(ILogger logger, string path, string destination, long size);

    [LoggerMessage(33, LogLevel.Warning, "{Path}: source failed at offset {Offset} ({Reason}); refreshing the link and resuming")]
    public static partial void SourceRestart(ILogger logger, string path, long offset, string reason);

    [LoggerMessage(39, LogLevel.Warning, "{Path}: the hashes of the {Offset} bytes staged earlier are not in this process and the destination is write-once; copying the file again from byte 0")]
    public static partial void StartingOverWriteOnce(ILogger logger, string path, long offset);

    [LoggerMessage(34, LogLevel.Error, "{Path} could not be copied to {Destination}: {Reason}")]
    public static partial void CopyFailed(ILogger logger, string path, string destination, string reason);
}
