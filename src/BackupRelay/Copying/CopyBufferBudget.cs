using System.Buffers;

namespace BackupRelay.Copying;

/// <summary>
/// The process-wide buffer budget every copy draws its block buffers from, so 24 concurrent
/// messages share one bound instead of multiplying it. FIFO: a large request is not starved.
/// </summary>
public sealed class CopyBufferBudget(long capacityBytes)
{
    private readonly ArrayPool<byte> _pool = ArrayPool<byte>.Create(maxArrayLength: 1 << 30, maxArraysPerBucket: 256);
    private readonly Queue<(long Bytes, TaskCompletionSource Granted)> _waiters = new();
    private readonly object _sync = new();
    private long _available = capacityBytes;
    private long _peakInUse;

    public long CapacityBytes { get; } = capacityBytes;

    /// <summary>Most bytes ever held at once (for tests and the benchmark).</summary>
    public long PeakInUseBytes => Interlocked.Read(ref _peakInUse);

    public long InUseBytes
    {
        get
        {
            lock (_sync)
            {
                return CapacityBytes - _available;
            }
        }
    }

    /// <summary>Waits until <paramref name="bytes"/> fit in the budget, then lends a buffer at least that long.</summary>
    public async ValueTask<Lease> RentAsync(int bytes, CancellationToken cancellationToken = default)
    {
        // A request bigger than the whole budget is served alone rather than never.
        long charge = Math.Min(bytes, CapacityBytes);
        TaskCompletionSource granted;
        lock (_sync)
        {
            if (_waiters.Count == 0 && _available >= charge)
            {
                Take(charge);
                return new Lease(this, _pool.Rent(Math.Max(bytes, 1)), charge);
            }

            granted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Enqueue((charge, granted));
        }

        try
        {
            await granted.Task.WaitAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            // Either the waiter dies here (Release will skip it and refund), or it was granted in the race.
            if (!granted.TrySetCanceled(cancellationToken))
            {
                Release(charge);
            }

            throw;
        }

        return new Lease(this, _pool.Rent(Math.Max(bytes, 1)), charge);
    }

    private void Take(long bytes)
    {
        _available -= bytes;
        var inUse = CapacityBytes - _available;
        if (inUse > _peakInUse)
        {
            Interlocked.Exchange(ref _peakInUse, inUse);
        }
    }

    private void Release(long bytes)
    {
        lock (_sync)
        {
            _available += bytes;
            while (_waiters.Count > 0 && _available >= _waiters.Peek().Bytes)
            {
                var (next, granted) = _waiters.Dequeue();
                Take(next);
                if (!granted.TrySetResult())
                {
                    _available += next;
                }
            }
        }
    }

    /// <summary>A buffer on loan; dispose to return it and its share of the budget.</summary>
    public sealed class Lease(CopyBufferBudget owner, byte[] buffer, long charge) : IDisposable
    {
        private int _disposed;

        public byte[] Buffer { get; } = buffer;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                owner._pool.Return(Buffer);
                owner.Release(charge);
            }
        }
    }
}
