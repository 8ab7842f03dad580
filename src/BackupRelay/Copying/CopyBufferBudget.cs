using System.Buffers;
using System.Numerics;

namespace BackupRelay.Copying;

/// <summary>
/// The process-wide buffer budget every copy draws its block buffers from, so 24 concurrent
/// messages share one bound instead of multiplying it. FIFO: a large request is not starved.
/// A lease is charged what its buffers really hold — the pool hands out arrays of a power of two,
/// so 9 MiB asked for is a 16 MiB array and is charged 16 MiB — so the budget bounds real memory,
/// not what was asked for.
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

    /// <summary>Waits until a buffer of at least <paramref name="bytes"/> fits in the budget, then lends it.</summary>
    public ValueTask<Lease> RentAsync(int bytes, CancellationToken cancellationToken = default) => RentAsync(1, bytes, cancellationToken);

    /// <summary>
    /// Waits until <paramref name="count"/> buffers of at least <paramref name="bytes"/> each fit in the budget, then
    /// lends them together (all or none: a copy never holds part of its memory while it waits for the rest).
    /// </summary>
    public async ValueTask<Lease> RentAsync(int count, int bytes, CancellationToken cancellationToken = default)
    {
        // A request bigger than the whole budget is served alone rather than never.
        var charge = Math.Min(count * HandedOut(bytes), CapacityBytes);
        TaskCompletionSource granted;
        lock (_sync)
        {
            if (_waiters.Count == 0 && _available >= charge)
            {
                Take(charge);
                return new Lease(this, Buffers(count, bytes), charge);
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

        return new Lease(this, Buffers(count, bytes), charge);
    }

    /// <summary>
    /// <paramref name="count"/> buffers of at least <paramref name="bytes"/> each when they fit in the budget now and nobody
    /// waits (null otherwise): memory a copy could use but does not need.
    /// </summary>
    public Lease? TryRent(int count, int bytes)
    {
        var charge = count * HandedOut(bytes);
        lock (_sync)
        {
            if (_waiters.Count > 0 || _available < charge)
            {
                return null;
            }

            Take(charge);
        }

        return new Lease(this, Buffers(count, bytes), charge);
    }

    /// <summary>The length of the array the pool hands out for <paramref name="bytes"/>: its bucket, a power of two (at least 16).</summary>
    public static long HandedOut(int bytes) => (long)BitOperations.RoundUpToPowerOf2((uint)Math.Max(bytes, 16));

    private byte[][] Buffers(int count, int bytes)
    {
        var buffers = new byte[count][];
        for (var i = 0; i < count; i++)
        {
            buffers[i] = _pool.Rent(Math.Max(bytes, 1));
        }

        return buffers;
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

    /// <summary>Buffers on loan; dispose to return them and their share of the budget.</summary>
    public sealed class Lease(CopyBufferBudget owner, byte[][] buffers, long charge) : IDisposable
    {
        private int _disposed;

        /// <summary>The first (or only) buffer.</summary>
        public byte[] Buffer => buffers[0];

        public IReadOnlyList<byte[]> Buffers => buffers;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _disposed, 1) == 0)
            {
                foreach (var buffer in buffers)
                {
                    owner._pool.Return(buffer);
                }

                owner.Release(charge);
            }
        }
    }
}
