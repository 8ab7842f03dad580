using System.Diagnostics;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// One connection of a long haul, capped at <paramref name="bytesPerSecond"/> (0: no cap), both ways: downloads wait
/// before writing each chunk, writes before reading the next one, until the bytes moved so far are due.
/// </summary>
internal sealed class ConnectionRate(long bytesPerSecond)
{
    private readonly long _started = Stopwatch.GetTimestamp();

    public long BytesPerSecond => bytesPerSecond;

    public async ValueTask WaitAsync(long bytesSoFar, CancellationToken cancellationToken)
    {
        if (bytesPerSecond > 0 && TimeSpan.FromSeconds((double)bytesSoFar / bytesPerSecond) - Stopwatch.GetElapsedTime(_started) is { Ticks: > 0 } ahead)
        {
            await Task.Delay(ahead, cancellationToken);
        }
    }
}
