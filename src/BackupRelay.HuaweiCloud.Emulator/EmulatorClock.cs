namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// The emulator's time: an inner clock plus an offset that <c>POST /_emulator/clock/advance</c>
/// moves forward, so tests can age tokens, links and jobs without sleeping.
/// </summary>
public sealed class EmulatorClock(TimeProvider inner) : TimeProvider
{
    private long _offsetTicks;

    public TimeSpan Offset => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));

    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow() + Offset;

    public void Advance(TimeSpan by) => Interlocked.Add(ref _offsetTicks, by.Ticks);

    public void Reset() => Interlocked.Exchange(ref _offsetTicks, 0);
}
