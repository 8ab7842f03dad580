namespace BackupRelay.Copying;

/// <summary>
/// Which blocks each connection of a <see cref="SegmentedDownload"/> asks for. The missing blocks form runs; a
/// connection takes a segment — whole blocks, one request — from the lowest run, so the hashes, which go in file
/// order, follow close behind. A segment is long enough that its transfer is many times its wait for the first byte
/// (both as the requests so far observed them), but never more than a fair share of what is unassigned. The first
/// round's lengths step up (1/N, 2/N … of a segment) so the segments, which start together, end one after another.
/// A connection that finds nothing unassigned takes the second half of the largest remainder; the connection that
/// had it stops early. Blocks are claimed one by one, so a slice that ends (or a copy that stops) ends the segments.
/// </summary>
internal sealed class SegmentPlan(int connections, Func<bool> stopping)
{
    private int _connections = connections;

    /// <summary>A request's transfer is at least this many times its wait for the first byte (a connection about 94 % busy).</summary>
    private const double TransferPerWait = 16;

    /// <summary>Segment length before any request was timed, and the most blocks one request asks for.</summary>
    private const int InitialSegmentBlocks = 4;
    private const int MaxSegmentBlocks = 64;

    private readonly LinkedList<Run> _unassigned = new();
    private readonly List<Segment> _active = [];
    private readonly object _sync = new();
    private double? _firstByteSeconds;
    private double? _bytesPerSecond;
    private int _firstRound;

    /// <summary>Adds a missing block (in increasing order while the plan is built).</summary>
    public void AddMissing(int block)
    {
        if (_unassigned.Last?.Value is { } last && last.End == block)
        {
            last.End++;
        }
        else
        {
            _unassigned.AddLast(new Run { Start = block, End = block + 1 });
        }
    }

    /// <summary>
    /// The block <paramref name="block"/> as a segment of its own (with <paramref name="wholeRun"/>: the run of missing
    /// blocks it starts), claimed; null when it is not missing. An answer already open covers it.
    /// </summary>
    public (Segment Segment, int Block)? Take(int block, bool wholeRun = false)
    {
        lock (_sync)
        {
            for (var run = _unassigned.First; run is not null; run = run.Next)
            {
                if (run.Value.Start == block)
                {
                    var end = wholeRun ? run.Value.End : block + 1;
                    run.Value.Start = end;
                    if (run.Value.Start == run.Value.End)
                    {
                        _unassigned.Remove(run);
                    }

                    var segment = new Segment { Next = block, End = end };
                    _active.Add(segment);
                    return (segment, ClaimLocked(segment));
                }
            }

            return null;
        }
    }

    /// <summary>The next segment, its first block claimed: the lowest unassigned run first, else half of the largest remainder; null when none is left.</summary>
    public (Segment? Segment, int Block) Next(int blockSize)
    {
        lock (_sync)
        {
            if (stopping())
            {
                return (null, -1);
            }

            Segment segment;
            if (_unassigned.First is { } run)
            {
                var take = Math.Min(SegmentBlocks(blockSize), run.Value.End - run.Value.Start);
                if (_firstRound < _connections)
                {
                    take = Math.Max(1, (int)Math.Ceiling(take * (++_firstRound) / (double)_connections));
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

            _active.Add(segment);
            return (segment, ClaimLocked(segment));
        }
    }

    /// <summary>The segment's next block, claimed by its connection; -1 when the segment is done (or cut), or the copy stops.</summary>
    public int Claim(Segment segment)
    {
        lock (_sync)
        {
            return stopping() ? Retire(segment) : ClaimLocked(segment);
        }
    }

    /// <summary>The block the segment ends before, now (another connection may have taken its second half).</summary>
    public int EndOf(Segment segment)
    {
        lock (_sync)
        {
            return segment.End;
        }
    }

    /// <summary>More connections share what is left (the download grew: <see cref="SegmentedDownload"/>).</summary>
    public void AddConnections(int more)
    {
        lock (_sync)
        {
            _connections += more;
        }
    }

    /// <summary>Blocks not claimed yet: unassigned, or left in a connection's segment (a new connection may take half of one).</summary>
    public int RemainingBlocks()
    {
        lock (_sync)
        {
            return _unassigned.Sum(r => r.End - r.Start) + _active.Sum(s => Math.Max(0, s.End - s.Next));
        }
    }

    public void FirstByte(TimeSpan wait) => Update(ref _firstByteSeconds, wait.TotalSeconds);

    public void Transfer(long bytes, TimeSpan took)
    {
        if (took > TimeSpan.Zero)
        {
            Update(ref _bytesPerSecond, bytes / took.TotalSeconds);
        }
    }

    private int ClaimLocked(Segment segment) => segment.Next < segment.End ? segment.Next++ : Retire(segment);

    private int Retire(Segment segment)
    {
        _active.Remove(segment);
        return -1;
    }

    private int SegmentBlocks(int blockSize)
    {
        var unassigned = _unassigned.Sum(r => r.End - r.Start);
        var fair = (unassigned + _connections - 1) / _connections;
        var wanted = _firstByteSeconds * _bytesPerSecond * TransferPerWait is { } bytes ? (int)Math.Ceiling(bytes / blockSize) : InitialSegmentBlocks;
        return Math.Clamp(Math.Min(wanted, fair), 1, MaxSegmentBlocks);
    }

    /// <summary>Moving averages of what the requests observed.</summary>
    private void Update(ref double? average, double sample)
    {
        lock (_sync)
        {
            average = average is { } previous ? (0.7 * previous) + (0.3 * sample) : sample;
        }
    }

    private sealed class Run
    {
        public int Start;
        public int End;
    }

    /// <summary>A connection's share: blocks [Next, End), Next claimed one by one; End moves down when another connection takes half.</summary>
    public sealed class Segment
    {
        public int Next;
        public int End;
    }
}
