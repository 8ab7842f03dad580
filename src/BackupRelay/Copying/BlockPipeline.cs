namespace BackupRelay.Copying;

/// <summary>
/// Blocks of one file on their way to a destination, in file order: each holds a buffer from the process-wide
/// budget from before it is filled until it is both hashed (the file's hashes in file order, behind every earlier
/// block, each hash on its own lane: <see cref="FileHashes.AppendAsync"/>) and sent (at most <c>maxSends</c> at once); the first failure stops the rest. Memory stays within the
/// budget however slow one block is, because buffers are rented in file order and each is freed by its own work.
/// Used by the restore's upload to OBS and a drill's read-back.
/// </summary>
internal sealed class BlockPipeline : IDisposable
{
    private readonly CopyBufferBudget _budget;
    private readonly FileHashes? _hashes;
    private readonly SemaphoreSlim _sends;
    private readonly FirstFailure _failure;
    private readonly List<Task> _blocks = [];
    private readonly CancellationToken _cancellation;
    private Task _queued = Task.CompletedTask;
    private int _waitingToSend;
    private long _bytesSent;
    private Task _hashing = Task.CompletedTask;

    /// <param name="hashes">The file's hashes so far (null: this slice does not hash).</param>
    public BlockPipeline(CopyBufferBudget budget, FileHashes? hashes, int maxSends, CancellationToken cancellationToken)
    {
        (_budget, _hashes) = (budget, hashes);
        _sends = new SemaphoreSlim(maxSends);
        _failure = new FirstFailure(cancellationToken);
        _cancellation = cancellationToken;
    }

    /// <summary>Cancelled when a block failed (or the caller cancelled).</summary>
    public CancellationToken Token => _failure.Token;

    public bool Stopped => _failure.Stopped;

    /// <summary>The first failure of a block; rethrow it once <see cref="DrainAsync"/> returned.</summary>
    public Exception? Error => _failure.Error;

    /// <summary>A buffer for the next block, once the budget has room (call in file order).</summary>
    public ValueTask<CopyBufferBudget.Lease> RentAsync(int length) => _budget.RentAsync(length, _failure.Token);

    /// <summary>
    /// The next block of the file, in <paramref name="lease"/>'s first <paramref name="length"/> bytes once
    /// <paramref name="filled"/> ends: hashed after the blocks before it, then sent with <paramref name="send"/> (null:
    /// the destination has it already); the buffer goes back to the budget after both.
    /// </summary>
    public void Add(CopyBufferBudget.Lease lease, int length, Task filled, Func<ReadOnlyMemory<byte>, CancellationToken, Task>? send)
    {
        var data = lease.Buffer.AsMemory(0, length);
        var queued = QueueAfterAsync(_queued, filled, data);
        _queued = queued;
        _hashing = queued.Unwrap();
        _blocks.Add(CompleteAsync(lease, data, filled, _hashing, send));
    }

    /// <summary>Queues the block to the hashes once it is filled and the block before it is queued (file order); the inner task ends once it is hashed.</summary>
    private async Task<Task> QueueAfterAsync(Task previous, Task filled, ReadOnlyMemory<byte> data)
    {
        await previous;
        await filled;
        return _hashes?.AppendAsync(data) ?? Task.CompletedTask;
    }

    private async Task CompleteAsync(CopyBufferBudget.Lease lease, ReadOnlyMemory<byte> data, Task filled, Task hashed,
        Func<ReadOnlyMemory<byte>, CancellationToken, Task>? send)
    {
        try
        {
            await filled;
            if (send is not null)
            {
                Interlocked.Increment(ref _waitingToSend);
                try
                {
                    await _sends.WaitAsync(_failure.Token);
                }
                finally
                {
                    Interlocked.Decrement(ref _waitingToSend);
                }

                try
                {
                    await send(data, _failure.Token);
                    Interlocked.Add(ref _bytesSent, data.Length);
                }
                finally
                {
                    _sends.Release();
                }
            }

            await hashed;
        }
        catch (Exception ex)
        {
            Fail(ex);
        }
        finally
        {
            lease.Dispose();
        }
    }

    /// <summary>Blocks filled and waiting for a send slot now (more sends at once would take them).</summary>
    public int WaitingToSend => Volatile.Read(ref _waitingToSend);

    /// <summary>Bytes of blocks sent so far.</summary>
    public long BytesSent => Interlocked.Read(ref _bytesSent);

    /// <summary>Lets <paramref name="more"/> more blocks be sent at once.</summary>
    public void AddSends(int more) => _sends.Release(more);

    /// <summary>
    /// Sends that adapt (<see cref="ConnectionGrowth"/>), from <paramref name="sends"/> up to <paramref name="most"/>: a step
    /// is taken only while blocks wait for a send slot (otherwise the reads, or the budget, are the bound). Returns the
    /// sends it reached once <paramref name="stop"/> is cancelled or it stopped.
    /// </summary>
    public Task<int> AdaptSendsAsync(int sends, int most, TimeSpan interval, TimeProvider time, CancellationToken stop) =>
        ConnectionGrowth.RunAsync(sends, most, interval, time, () => BytesSent, _ => { },
            interval =>
            {
                if (WaitingToSend == 0)
                {
                    return false;
                }

                AddSends(interval.Step);
                return true;
            },
            () => Stopped, stop);

    /// <summary>Keeps the first failure and stops the other blocks (a stop caused by it is not a failure of its own).</summary>
    public void Fail(Exception failure) => _failure.Fail(failure);

    /// <summary>Waits for every block added (their failures are in <see cref="Error"/>); throws only a cancellation by the caller.</summary>
    public async Task DrainAsync()
    {
        await Task.WhenAll(_blocks);
        try
        {
            await _hashing;
        }
        catch when (Error is not null)
        {
            // A block that was never filled is never hashed; its failure is the one reported.
        }
    }

    /// <summary>
    /// Runs <paramref name="addBlocks"/> (which rents and adds the blocks, in file order), then waits for every block.
    /// A block that failed while the loop waited for a buffer ends the loop quietly (the failure is in <see cref="Error"/>);
    /// anything else the loop throws is rethrown once the blocks in flight have ended.
    /// </summary>
    public async Task RunAsync(Func<Task> addBlocks)
    {
        try
        {
            await addBlocks();
        }
        catch (OperationCanceledException) when (Error is not null && !_cancellation.IsCancellationRequested)
        {
            // A block failed while this loop waited for a buffer: that failure is the one reported.
        }
        catch
        {
            await DrainAsync();
            throw;
        }

        await DrainAsync();
    }

    /// <summary>Rethrows the first failure, if any.</summary>
    public void ThrowIfFailed() => _failure.ThrowIfFailed();

    public void Dispose()
    {
        _sends.Dispose();
        _failure.Dispose();
    }
}
