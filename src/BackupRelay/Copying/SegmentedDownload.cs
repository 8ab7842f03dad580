using System.Runtime.ExceptionServices;

namespace BackupRelay.Copying;

/// <summary>
/// One file over several connections into a destination that takes bytes at any offset (<see cref="IRandomAccessStaging"/>).
/// Each connection streams one long range — a segment of whole blocks — chunk by chunk, writing the bytes where they
/// belong and recording each block as staged once it is whole; MD5 and SHA-256 (and the multipart check) run in file
/// order by reading the staged blocks back as the prefix that landed grows. So a block never waits in memory for the
/// blocks before it, and a connection pays its time to first byte once per segment, not once per block.
/// <para>
/// Segments are sized from what the connections observe (time to first byte × rate, so the wait is a small share of
/// a request), never beyond a fair share of what is left, and handed out lowest offset first so the hashes follow
/// close behind. A connection that runs out of work takes the second half of the largest remainder (the connection
/// that had it stops early). Memory: one chunk buffer per connection and one block for hashing, from the budget.
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

    /// <summary>A request's transfer is at least this many times its wait for the first byte (a connection about 94 % busy).</summary>
    private const double TransferPerWait = 16;

    /// <summary>Segment length before any request was timed, and the most blocks one request asks for.</summary>
    private const int InitialSegmentBlocks = 4;
    private const int MaxSegmentBlocks = 64;

    private readonly CopyState _state;
    private readonly CopySource _source;
    private readonly IStagingFile _staging;
    private readonly CopyBufferBudget _budget;
    private readonly int _connections;
    private readonly TimeProvider _time;
    private readonly long _size;
    private readonly int _blockSize;
    private readonly bool[] _landed;
    private readonly LinkedList<Run> _unassigned = new();
    private readonly List<Segment> _active = [];
    private readonly Observed _observed = new();
    private readonly SemaphoreSlim _landing = new(0);
    private readonly object _sync = new();
    private readonly CancellationTokenSource _stop;
    private readonly int _stagedAtStart;
    private int _running;
    private int _firstWave;
    private Exception? _error;

    public SegmentedDownload(CopyState state, CopySource source, IStagingFile staging, CopyBufferBudget budget, int connections, TimeProvider time,
        CancellationToken cancellationToken)
    {
        (_state, _source, _staging, _budget, _connections, _time) = (state, source, staging, budget, connections, time);
        _size = state.Size!.Value;
        _blockSize = state.BlockSize;
        _landed = new bool[(int)((_size + _blockSize - 1) / _blockSize)];
        _stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        // A slice limited in bytes covers the file from its offset on, in file order, as far as the limit goes.
        var options = source.Options;
        var sliceEnd = state.Unsliced || options.SliceMaxBytes <= 0
            ? _landed.Length
            : (int)Math.Min(_landed.Length, (state.Offset + options.SliceMaxBytes + _blockSize - 1) / _blockSize);
        for (var block = 0; block < sliceEnd; block++)
        {
            _landed[block] = state.Staged.TryGetValue(Id(block), out var staged) && staged == Length(block);
            if (_landed[block])
            {
                _stagedAtStart++;
                continue;
            }

            if (_unassigned.Last?.Value is { } last && last.End == block)
            {
                last.End++;
            }
            else
            {
                _unassigned.AddLast(new Run { Start = block, End = block + 1 });
            }
        }
    }

    /// <summary>
    /// Downloads what is missing, hashing from <paramref name="hashFrom"/> (a block boundary the state's hashes end at);
    /// <paramref name="probe"/>, when given, is an open answer for the block at <paramref name="probeOffset"/>. Returns when
    /// the file is staged and hashed or the slice ended (the state's offset is the hash cursor); throws the first failure.
    /// </summary>
    public async Task RunAsync(long hashFrom, SourceStream? probe, long probeOffset, CancellationToken cancellationToken)
    {
        var workers = new List<Task>();
        try
        {
            var first = probe is null ? null : TakeProbeSegment((int)(probeOffset / _blockSize));
            if (first is null)
            {
                probe?.Dispose();
                probe = null;
            }

            _running = _connections;
            for (var i = 0; i < _connections; i++)
            {
                var (opened, segment, block) = i == 0 && first is { } probed ? (probe, probed.Segment, probed.Block) : ((SourceStream?)null, (Segment?)null, -1);
                workers.Add(Task.Run(() => WorkAsync(opened, segment, block), CancellationToken.None));
            }

            probe = null;
            var hashing = Task.Run(() => HashAsync(hashFrom), CancellationToken.None);
            await Task.WhenAll(workers);
            await hashing;
        }
        finally
        {
            probe?.Dispose();
            _stop.Dispose();
        }

        _state.BlocksSkipped += _stagedAtStart;
        cancellationToken.ThrowIfCancellationRequested();
        if (_error is { } error)
        {
            ExceptionDispatchInfo.Throw(error);
        }
    }

    private string Id(int block) => BlockIds.For(_blockSize, (long)block * _blockSize, _state.Request.Generation);

    private int Length(int block) => (int)Math.Min(_blockSize, _size - ((long)block * _blockSize));

    /// <summary>The probe's block as a one-block segment of its own, claimed (null when that block is staged already or beyond the slice).</summary>
    private (Segment Segment, int Block)? TakeProbeSegment(int block)
    {
        lock (_sync)
        {
            for (var run = _unassigned.First; run is not null; run = run.Next)
            {
                if (run.Value.Start == block)
                {
                    run.Value.Start++;
                    if (run.Value.Start == run.Value.End)
                    {
                        _unassigned.Remove(run);
                    }

                    var segment = Activate(new Segment { Next = block, End = block + 1 });
                    return (segment, ClaimLocked(segment));
                }
            }

            return null;
        }
    }

    /// <summary>One connection: the segment given (the probe's), then the next ones until none is left.</summary>
    private async Task WorkAsync(SourceStream? opened, Segment? segment, int block)
    {
        CopyBufferBudget.Lease? chunk = null;
        try
        {
            chunk = await _budget.RentAsync(Math.Min(ChunkBytes, _blockSize), _stop.Token);
            if (segment is null)
            {
                (segment, block) = Next();
            }

            while (segment is not null)
            {
                await StreamSegmentAsync(segment, block, opened, chunk.Buffer);
                opened = null;
                (segment, block) = Next();
            }
        }
        catch (Exception ex)
        {
            Fail(ex);
        }
        finally
        {
            opened?.Dispose();
            chunk?.Dispose();
            Interlocked.Decrement(ref _running);
            _landing.Release();
        }
    }

    /// <summary>Streams <paramref name="segment"/> from <paramref name="block"/> on, one request while it holds, block by block.</summary>
    private async Task StreamSegmentAsync(Segment segment, int block, SourceStream? stream, byte[] chunk)
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
                        long end;
                        lock (_sync)
                        {
                            end = Math.Min((long)segment.End * _blockSize, _size);
                        }

                        var asked = _time.GetTimestamp();
                        stream = await _source.OpenRangeAsync(link, offset, end - offset, _stop.Token);
                        _observed.FirstByte(_time.GetElapsedTime(asked));
                        streamAt = offset;
                    }

                    var reading = _time.GetTimestamp();
                    await CopyBlockAsync(stream, offset, length, chunk);
                    _observed.Transfer(length, _time.GetElapsedTime(reading));
                    streamAt += length;
                }
                catch (Exception ex) when (CopySource.IsRetriable(ex) && !_stop.IsCancellationRequested)
                {
                    stream?.Dispose();
                    stream = null;
                    await _source.FailedAtAsync(offset, ++failures, ex, link, _stop.Token);
                    continue;
                }

                failures = 0;
                Interlocked.Add(ref _state.BytesFromSource, length);
                await _staging.MarkStagedAsync(Id(block), length, _stop.Token);
                _staging.StartWriteBack(offset, length);
                Interlocked.Increment(ref _state.BlocksUploaded);
                lock (_sync)
                {
                    _landed[block] = true;
                }

                _landing.Release();
                block = Claim(segment);
            }
        }
        finally
        {
            // A segment cut short (split, or the slice ended) leaves bytes unread: the connection is not reused.
            stream?.Dispose();
        }
    }

    private async Task CopyBlockAsync(SourceStream stream, long offset, int length, byte[] chunk)
    {
        for (var done = 0; done < length;)
        {
            var want = Math.Min(chunk.Length, length - done);
            var read = await stream.Stream.ReadAtLeastAsync(chunk.AsMemory(0, want), want, throwOnEndOfStream: false, _stop.Token);
            if (read < want)
            {
                throw new SourceFailedException($"The range at {offset} ended after {done + read} of {length} bytes.");
            }

            await _staging.WriteAsync(offset + done, chunk.AsMemory(0, want), _stop.Token);
            done += want;
        }
    }

    /// <summary>The next segment, its first block claimed: the lowest unassigned run first, else half of the largest remainder.</summary>
    private (Segment? Segment, int Block) Next()
    {
        lock (_sync)
        {
            if (_stop.IsCancellationRequested || _state.SliceExhausted(_time))
            {
                return (null, -1);
            }

            Segment segment;
            if (_unassigned.First is { } run)
            {
                var take = Math.Min(SegmentBlocks(), run.Value.End - run.Value.Start);
                if (_firstWave < _connections)
                {
                    // The connections start together: segments of equal length would end together, and the hashes
                    // would wait for all of them at once, every round. The first round's lengths step up instead
                    // (1/N, 2/N … of a segment), so segments end one after another from then on.
                    take = Math.Max(1, (int)Math.Ceiling(take * (++_firstWave) / (double)_connections));
                }

                segment = new Segment { Next = run.Value.Start, End = run.Value.Start + take };
                run.Value.Start += take;
                if (run.Value.Start == run.Value.End)
                {
                    _unassigned.Remove(run);
                }
            }
            else if (_active.MaxBy(s => s.End - s.Next) is { } largest && largest.End - largest.Next >= 2)
            {
                var middle = largest.Next + ((largest.End - largest.Next) / 2);
                segment = new Segment { Next = middle, End = largest.End };
                largest.End = middle;
            }
            else
            {
                return (null, -1);
            }

            Activate(segment);
            return (segment, ClaimLocked(segment));
        }
    }

    private Segment Activate(Segment segment)
    {
        _active.Add(segment);
        return segment;
    }

    /// <summary>The segment's next block, claimed by its connection; -1 when the segment is done (or cut), the slice ended or the copy failed.</summary>
    private int Claim(Segment segment)
    {
        lock (_sync)
        {
            return _stop.IsCancellationRequested || _state.SliceExhausted(_time) ? Retire(segment) : ClaimLocked(segment);
        }
    }

    private int ClaimLocked(Segment segment)
    {
        if (segment.Next >= segment.End)
        {
            return Retire(segment);
        }

        return segment.Next++;
    }

    private int Retire(Segment segment)
    {
        _active.Remove(segment);
        return -1;
    }

    /// <summary>Blocks for the next request: long enough that its wait is a small share, at most a fair share of what is unassigned.</summary>
    private int SegmentBlocks()
    {
        var unassigned = _unassigned.Sum(r => r.End - r.Start);
        var fair = (unassigned + _connections - 1) / _connections;
        var wanted = _observed.BytesWorthAWait(TransferPerWait) is { } bytes ? (int)Math.Ceiling(bytes / _blockSize) : InitialSegmentBlocks;
        return Math.Clamp(Math.Min(wanted, fair), 1, MaxSegmentBlocks);
    }

    /// <summary>MD5 and SHA-256 (and the multipart check) in file order, each block read back once it and those before it landed.</summary>
    private async Task HashAsync(long hashFrom)
    {
        using var buffer = await _budget.RentAsync(_blockSize, _stop.Token);
        try
        {
            for (var block = (int)(hashFrom / _blockSize); block < _landed.Length; block++)
            {
                while (!IsLanded(block))
                {
                    if (Volatile.Read(ref _running) == 0 && !IsLanded(block))
                    {
                        return;
                    }

                    await _landing.WaitAsync(_stop.Token);
                }

                var data = buffer.Buffer.AsMemory(0, Length(block));
                await _staging.ReadAsync((long)block * _blockSize, data, _stop.Token);
                _state.Hashes!.AppendParallel(data);
                _state.HashedTo(((long)block * _blockSize) + data.Length);
            }
        }
        catch (Exception ex)
        {
            Fail(ex);
        }
    }

    private bool IsLanded(int block)
    {
        lock (_sync)
        {
            return _landed[block];
        }
    }

    /// <summary>Keeps the first failure and stops every connection (a stop caused by it is not a failure of its own).</summary>
    private void Fail(Exception failure)
    {
        if (failure is OperationCanceledException && _stop.IsCancellationRequested)
        {
            return;
        }

        if (Interlocked.CompareExchange(ref _error, failure, null) is null)
        {
            _stop.Cancel();
        }
    }

    private sealed class Run
    {
        public int Start;
        public int End;
    }

    /// <summary>A connection's share: blocks [Next, End), Next claimed one by one; End moves down when another connection takes half.</summary>
    private sealed class Segment
    {
        public int Next;
        public int End;
    }

    /// <summary>Time to first byte and per-connection rate the requests observed (moving averages).</summary>
    private sealed class Observed
    {
        private readonly object _sync = new();
        private double? _firstByteSeconds;
        private double? _bytesPerSecond;

        public void FirstByte(TimeSpan wait) => Update(ref _firstByteSeconds, wait.TotalSeconds);

        public void Transfer(long bytes, TimeSpan took)
        {
            if (took > TimeSpan.Zero)
            {
                Update(ref _bytesPerSecond, bytes / took.TotalSeconds);
            }
        }

        /// <summary>Bytes a request should carry for its transfer to last <paramref name="factor"/> times its wait; null before both were observed.</summary>
        public double? BytesWorthAWait(double factor)
        {
            lock (_sync)
            {
                return _firstByteSeconds * _bytesPerSecond * factor;
            }
        }

        private void Update(ref double? average, double sample)
        {
            lock (_sync)
            {
                average = average is { } previous ? (0.7 * previous) + (0.3 * sample) : sample;
            }
        }
    }
}
