namespace BackupRelay.Copying;

/// <summary>
/// One file over several connections into a destination that takes bytes at any offset (<see cref="IRandomAccessStaging"/>).
/// Each connection streams one long range — a segment of whole blocks — chunk by chunk, writing the bytes where they
/// belong and recording each block as staged once it is whole; MD5 and SHA-256 (and the multipart check) run in file
/// order by reading the staged blocks back as the prefix that landed grows. So a block never waits in memory for the
/// blocks before it, and a connection pays its time to first byte once per segment, not once per block.
/// <para>
/// Which blocks each request covers is the <see cref="SegmentPlan"/>'s. Memory: one chunk per connection and four for
/// hashing, taken from the budget in one piece before anything starts and held to the end — a copy never holds part of its
/// memory while waiting for the rest, so copies sharing the budget wait their turn instead of blocking each other.
/// </para>
/// <para>
/// A range that fails is asked for again from its block (the link refreshed once for everyone, at most
/// <c>Copy__MaxSourceAttempts</c> times in a row); a slice ends by claiming no more blocks: the hash cursor is where
/// the next slice starts, and blocks staged beyond it are read back, not downloaded again.
/// </para>
/// </summary>
internal sealed class SegmentedDownload
{
    /// <summary>Bytes each connection reads and writes at a time.</summary>
    internal const int ChunkBytes = 1024 * 1024;

    private readonly CopyState _state;
    private readonly CopySource _source;
    private readonly IStagingFile _staging;
    private readonly CopyBufferBudget _budget;
    private readonly int _connections;
    private readonly TimeProvider _time;
    private readonly long _size;
    private readonly int _blockSize;
    private readonly bool[] _landed;
    private readonly SegmentPlan _plan;
    private readonly SemaphoreSlim _landing = new(0);
    private readonly object _sync = new();
    private readonly FirstFailure _failure;
    private readonly int _stagedAtStart;
    private readonly long _hashFrom;
    private readonly int _maxConnections;
    private readonly List<Task> _workers = [];
    private readonly List<CopyBufferBudget.Lease> _addedMemory = [];
    private bool _closed;
    private int _running;
    private long _received;
    private long _hashIdleTicks;
    private long _hashWaitingSince;

    /// <param name="hashFrom">A block boundary the state's hashes end at (0 for fresh ones); no hashes: the commit hashes the file back.</param>
    /// <param name="maxConnections">The most connections the download grows to while more pay (<see cref="AdaptAsync"/>).</param>
    public SegmentedDownload(CopyState state, CopySource source, IStagingFile staging, CopyBufferBudget budget, int connections, TimeProvider time,
        long hashFrom, CancellationToken cancellationToken, int maxConnections = 0)
    {
        _hashFrom = hashFrom;
        _maxConnections = connections == 1 ? 1 : Math.Max(connections, maxConnections);
        (_state, _source, _staging, _budget, _connections, _time) = (state, source, staging, budget, connections, time);
        _size = state.Size!.Value;
        _blockSize = state.BlockSize;
        _landed = new bool[(int)((_size + _blockSize - 1) / _blockSize)];
        _failure = new FirstFailure(cancellationToken);
        _plan = new SegmentPlan(connections, () => _failure.Stopped || _state.SliceExhausted(_time));

        // A slice limited in bytes covers the file from its offset on, in file order, as far as the limit goes.
        var options = source.Options;
        var sliceEnd = state.Unsliced || options.SliceMaxBytes <= 0
            ? _landed.Length
            : (int)Math.Min(_landed.Length, (state.Offset + options.SliceMaxBytes + _blockSize - 1) / _blockSize);
        for (var block = 0; block < sliceEnd; block++)
        {
            // A block staged earlier counts as here when its bytes can be read back or are not to be hashed; otherwise
            // it is downloaded again for the hashes (and not staged again).
            // One connection is one stream from the offset on: the blocks after it pass by on that stream, staged or not.
            var hashed = state.Hashes is null || (long)block * _blockSize < hashFrom;
            var passedBy = connections == 1 && (long)block * _blockSize >= state.Offset;
            _landed[block] = !passedBy && state.Staged.TryGetValue(Id(block), out var staged) && staged == Length(block) && (hashed || staging.HoldsStagedBlocks);
            if (_landed[block])
            {
                _stagedAtStart++;
                continue;
            }

            _plan.AddMissing(block);
        }
    }

    /// <summary>
    /// Downloads what is missing; <paramref name="probe"/>, when given, is an open answer from the state's offset: one
    /// block (the first of a segment), or every byte to the end (one stream: the whole run of missing blocks from there).
    /// Returns when the file is staged and hashed or the slice ended (the state's offset is the hash cursor, every block
    /// before it at the destination); throws the first failure.
    /// </summary>
    public async Task RunAsync(SourceStream? probe, CancellationToken cancellationToken)
    {
        var probeOffset = _state.Offset;
        var toEnd = _state.StreamEnd == _size - 1;
        if (probe is not null && !toEnd && _state.StreamEnd != probeOffset + Math.Min(_blockSize, _size - probeOffset) - 1)
        {
            probe.Dispose();
            probe = null;
        }

        var chunkBytes = Math.Min(ChunkBytes, _blockSize);
        var ring = _state.Hashes is null ? 0 : HashRing;
        CopyBufferBudget.Lease? memory = null;
        try
        {
            memory = await _budget.RentAsync(_connections + ring, chunkBytes, cancellationToken);
            var first = probe is null || probeOffset % _blockSize != 0 ? null : _plan.Take((int)(probeOffset / _blockSize), wholeRun: toEnd);
            if (first is null)
            {
                probe?.Dispose();
                probe = null;
            }

            for (var i = 0; i < _connections; i++)
            {
                var (opened, segment, block) = i == 0 && first is { } probed ? (probe, probed.Segment, probed.Block) : ((SourceStream?)null, (SegmentPlan.Segment?)null, -1);
                StartWorker(opened, segment, block, memory.Buffers[i].AsMemory(0, chunkBytes));
            }

            probe = null;
            _state.Connections = _connections;
            var slices = memory.Buffers.Skip(_connections).Select(b => b.AsMemory(0, chunkBytes)).ToArray();
            var hashing = Task.Run(() => HashAsync(slices), CancellationToken.None);
            using var adaptStop = new CancellationTokenSource();
            var adapting = _maxConnections > _connections ? Task.Run(() => AdaptAsync(chunkBytes, adaptStop.Token), CancellationToken.None) : Task.CompletedTask;
            await WorkersEndedAsync();
            await adaptStop.CancelAsync();
            await adapting;
            await hashing;
            try
            {
                await _staging.CompleteAsync(cancellationToken);
            }
            catch (Exception ex)
            {
                _failure.Fail(ex);
            }
        }
        finally
        {
            probe?.Dispose();
            memory?.Dispose();
            foreach (var added in _addedMemory)
            {
                added.Dispose();
            }

            _failure.Dispose();
        }

        _state.BlocksSkipped += _stagedAtStart;
        cancellationToken.ThrowIfCancellationRequested();
        _failure.ThrowIfFailed();
    }

    private void StartWorker(SourceStream? opened, SegmentPlan.Segment? segment, int block, Memory<byte> chunk)
    {
        lock (_sync)
        {
            Interlocked.Increment(ref _running);
            _workers.Add(Task.Run(() => WorkAsync(opened, segment, block, chunk), CancellationToken.None));
        }
    }

    /// <summary>Waits for every connection, including those added while it waited; none is added after it returns.</summary>
    private async Task WorkersEndedAsync()
    {
        while (true)
        {
            Task[] started;
            lock (_sync)
            {
                started = [.. _workers];
            }

            await Task.WhenAll(started);
            lock (_sync)
            {
                if (_workers.Count == started.Length)
                {
                    _closed = true;
                    return;
                }
            }
        }
    }

    /// <summary>
    /// Connections that adapt (<see cref="ConnectionGrowth"/>): a step is taken only while the hashes waited for blocks in
    /// the interval (otherwise the copy is bound by its own CPU, where more connections only cost more), enough is left to
    /// share, and the budget gives the new connections' chunks without waiting.
    /// </summary>
    private Task AdaptAsync(int chunkBytes, CancellationToken stop)
    {
        long idleAtStart = 0;
        return ConnectionGrowth.RunAsync(_connections, _maxConnections, _source.Options.AdaptInterval, _time, () => Interlocked.Read(ref _received),
            from => idleAtStart = HashIdle(from), interval => TryGrow(interval.Step, chunkBytes, idleAtStart, interval.From, interval.To),
            () => _failure.Stopped, stop);
    }

    private bool TryGrow(int step, int chunkBytes, long idleAtStart, long from, long to)
    {
        // The hashes never waited for a block: they, not the link, are the bound.
        var seconds = Math.Max(_time.GetElapsedTime(from, to).TotalSeconds, 0.001);
        var hashesBound = _state.Hashes is not null && (HashIdle(to) - idleAtStart) / (double)_time.TimestampFrequency < seconds * 0.05;
        if (hashesBound || _plan.RemainingBlocks() < step * 2 || _budget.TryRent(step, chunkBytes) is not { } memory)
        {
            return false;
        }

        lock (_sync)
        {
            if (_closed || _running == 0)
            {
                memory.Dispose();
                return false;
            }

            _addedMemory.Add(memory);
        }

        _plan.AddConnections(step);
        foreach (var buffer in memory.Buffers)
        {
            StartWorker(null, null, -1, buffer.AsMemory(0, chunkBytes));
        }

        _state.Connections += step;
        return true;
    }

    /// <summary>Ticks the hashes have spent waiting for a block to land, up to <paramref name="now"/> (a wait in progress included).</summary>
    private long HashIdle(long now)
    {
        var since = Volatile.Read(ref _hashWaitingSince);
        return Interlocked.Read(ref _hashIdleTicks) + (since == 0 ? 0 : Math.Max(0, now - since));
    }

    private string Id(int block) => BlockIds.For(_blockSize, (long)block * _blockSize, _state.Request.Generation);

    private int Length(int block) => (int)Math.Min(_blockSize, _size - ((long)block * _blockSize));

    /// <summary>One connection: the segment given (the probe's), then the next ones until none is left.</summary>
    private async Task WorkAsync(SourceStream? opened, SegmentPlan.Segment? segment, int block, Memory<byte> chunk)
    {
        try
        {
            if (segment is null)
            {
                (segment, block) = _plan.Next(_blockSize);
            }

            while (segment is not null)
            {
                await StreamSegmentAsync(segment, block, opened, chunk);
                opened = null;
                (segment, block) = _plan.Next(_blockSize);
            }
        }
        catch (Exception ex)
        {
            _failure.Fail(ex);
        }
        finally
        {
            opened?.Dispose();
            Interlocked.Decrement(ref _running);
            _landing.Release();
        }
    }

    /// <summary>Streams <paramref name="segment"/> from <paramref name="block"/> on, one request while it holds, block by block.</summary>
    private async Task StreamSegmentAsync(SegmentPlan.Segment segment, int block, SourceStream? stream, Memory<byte> chunk)
    {
        var streamAt = stream is null ? -1 : (long)block * _blockSize;
        try
        {
            for (var failures = 0; block >= 0;)
            {
                var offset = (long)block * _blockSize;
                var length = Length(block);
                var link = _source.Link;
                try
                {
                    if (stream is null || streamAt != offset)
                    {
                        stream?.Dispose();
                        stream = null;
                        var end = Math.Min((long)_plan.EndOf(segment) * _blockSize, _size);

                        var asked = _time.GetTimestamp();
                        stream = await _source.OpenRangeAsync(link, offset, end - offset, _failure.Token);
                        _plan.FirstByte(_time.GetElapsedTime(asked));
                        streamAt = offset;
                    }

                    var reading = _time.GetTimestamp();
                    await CopyBlockAsync(stream, offset, length, chunk);
                    _plan.Transfer(length, _time.GetElapsedTime(reading));
                    streamAt += length;
                }
                catch (Exception ex) when (CopySource.IsRetriable(ex) && !_failure.Stopped)
                {
                    stream?.Dispose();
                    stream = null;
                    await _source.FailedAtAsync(offset, ++failures, ex, link, _failure.Token);
                    continue;
                }

                failures = 0;
                Interlocked.Add(ref _state.BytesFromSource, length);
                if (await _staging.MarkStagedAsync(Id(block), offset, length, _failure.Token))
                {
                    _staging.StartWriteBack(offset, length);
                    Interlocked.Increment(ref _state.BlocksUploaded);
                }
                else
                {
                    Interlocked.Increment(ref _state.BlocksSkipped);
                }

                lock (_sync)
                {
                    _landed[block] = true;
                }

                _landing.Release();
                block = _plan.Claim(segment);
            }
        }
        finally
        {
            // A segment cut short (split, or the slice ended) leaves bytes unread: the connection is not reused.
            stream?.Dispose();
        }
    }

    private async Task CopyBlockAsync(SourceStream stream, long offset, int length, Memory<byte> chunk)
    {
        for (var done = 0; done < length;)
        {
            var want = Math.Min(chunk.Length, length - done);
            var read = await stream.Stream.ReadAtLeastAsync(chunk[..want], want, throwOnEndOfStream: false, _failure.Token);
            if (read < want)
            {
                throw new SourceFailedException($"The range at {offset} ended after {done + read} of {length} bytes.");
            }

            await _staging.WriteAsync(offset + done, chunk[..want], _failure.Token);
            Interlocked.Add(ref _received, want);
            done += want;
        }
    }

    /// <summary>
    /// The file's hashes in file order, each block read back once it and those before it landed, chunk by chunk into a
    /// ring of <see cref="HashRing"/> <paramref name="slices"/>: the next is read while the hashes' lanes work on the ones
    /// before (<see cref="FileHashes.AppendAsync"/>). The cursor moves past a block once every hash read it.
    /// Without hashes (no slices), the cursor only follows the blocks that landed.
    /// </summary>
    private async Task HashAsync(Memory<byte>[] slices)
    {
        var hashes = slices.Length == 0 ? null : _state.Hashes;
        var sliceBytes = hashes is null ? 0 : slices[0].Length;
        var slots = new Task[HashRing];
        Array.Fill(slots, Task.CompletedTask);
        var slot = 0;
        var pending = new Queue<(long Offset, int Length, Task Hashed)>();
        try
        {
            for (var block = (int)(_hashFrom / _blockSize); block < _landed.Length; block++)
            {
                while (!IsLanded(block))
                {
                    MoveCursor(pending);
                    if (Volatile.Read(ref _running) == 0 && !IsLanded(block))
                    {
                        await DrainAsync(pending);
                        return;
                    }

                    Volatile.Write(ref _hashWaitingSince, _time.GetTimestamp());
                    await _landing.WaitAsync(_failure.Token);
                    Interlocked.Add(ref _hashIdleTicks, _time.GetTimestamp() - Interlocked.Exchange(ref _hashWaitingSince, 0));
                }

                var offset = (long)block * _blockSize;
                var length = Length(block);
                var hashed = Task.CompletedTask;
                for (var done = 0; hashes is not null && done < length; done += sliceBytes, slot = (slot + 1) % HashRing)
                {
                    await slots[slot];
                    var data = slices[slot][..Math.Min(sliceBytes, length - done)];
                    await _staging.ReadAsync(offset + done, data, _failure.Token);
                    hashed = slots[slot] = hashes.AppendAsync(data);
                }

                pending.Enqueue((offset, length, hashed));
                MoveCursor(pending);
            }

            await DrainAsync(pending);
        }
        catch (Exception ex)
        {
            _failure.Fail(ex);
            await Task.WhenAll(slots).ContinueWith(_ => { }, TaskScheduler.Default);
        }
    }

    /// <summary>Chunks the blocks are read back into for hashing, so reading one overlaps hashing the others.</summary>
    internal const int HashRing = 4;

    private async Task DrainAsync(Queue<(long Offset, int Length, Task Hashed)> pending)
    {
        while (pending.Count > 0)
        {
            await pending.Peek().Hashed;
            MoveCursor(pending);
        }
    }

    /// <summary>Moves the cursor past the blocks at the head of <paramref name="pending"/> that every hash has read.</summary>
    private void MoveCursor(Queue<(long Offset, int Length, Task Hashed)> pending)
    {
        while (pending.Count > 0 && pending.Peek().Hashed.IsCompletedSuccessfully)
        {
            var (offset, length, _) = pending.Dequeue();
            _staging.Hashed(offset, length);
            _state.HashedTo(offset + length);
        }
    }

    private bool IsLanded(int block)
    {
        lock (_sync)
        {
            return _landed[block];
        }
    }
}
