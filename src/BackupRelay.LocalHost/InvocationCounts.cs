using System.Collections.Concurrent;

namespace BackupRelay.LocalHost;

/// <summary>Invocations the host sent to the worker, by function: in all, running now, and the most at once (tests read them).</summary>
public sealed class InvocationCounts
{
    private readonly ConcurrentDictionary<string, int> _sent = new();
    private readonly ConcurrentDictionary<string, int> _inFlight = new();
    private readonly ConcurrentDictionary<string, int> _maxInFlight = new();

    /// <summary>Invocations sent to the worker, by function.</summary>
    public IReadOnlyDictionary<string, int> Sent => _sent;

    /// <summary>Invocations running now of <paramref name="functionName"/>.</summary>
    public int InFlight(string functionName) => _inFlight.GetValueOrDefault(functionName);

    /// <summary>The most invocations of <paramref name="functionName"/> that ran at once.</summary>
    public int MaxInFlight(string functionName) => _maxInFlight.GetValueOrDefault(functionName);

    /// <summary>Counts an invocation sent; disposing the result counts it ended.</summary>
    public IDisposable Begin(string functionName)
    {
        _sent.AddOrUpdate(functionName, 1, (_, n) => n + 1);
        var running = _inFlight.AddOrUpdate(functionName, 1, (_, n) => n + 1);
        _maxInFlight.AddOrUpdate(functionName, running, (_, n) => Math.Max(n, running));
        return new Ended(() => _inFlight.AddOrUpdate(functionName, 0, (_, n) => n - 1));
    }

    private sealed class Ended(Action end) : IDisposable
    {
        private int _done;

        public void Dispose()
        {
            if (Interlocked.Exchange(ref _done, 1) == 0)
            {
                end();
            }
        }
    }
}
