using System.Text.RegularExpressions;

namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// A fault to inject into the next <see cref="Count"/> requests matching <see cref="Method"/> and
/// <see cref="Path"/> (a glob: <c>*</c> matches any run of characters, slashes included).
/// </summary>
public sealed class FaultSpec
{
    public string Method { get; set; } = "*";
    public string Path { get; set; } = "*";

    /// <summary>
    /// <c>status</c> (answer <see cref="Status"/>: 500, 503, 429 with Retry-After, 408, ...),
    /// <c>latency</c> (<see cref="DelayMs"/> before answering), <c>drop</c> (close the connection,
    /// after <see cref="AfterBytes"/> bytes of a download), <c>expireLink</c> (the link answers as
    /// expired), <c>ignoreRange</c> (serve the whole object despite Range), <c>corrupt</c> (flip the
    /// byte at file offset <see cref="Offset"/>: of a download, of an upload's body as received, or of a stored object as served), <c>failJob</c> / <c>hangJob</c> (the job this
    /// request creates fails with <see cref="Outcome"/> and <see cref="Reason"/>, or never ends),
    /// <c>lostResponse</c> (the request is carried out, then answered with <see cref="Status"/> as if the reply was lost).
    /// </summary>
    public string Kind { get; set; } = "status";

    /// <summary>How many matching requests get the fault; 0 or less: every one until cleared.</summary>
    public int Count { get; set; } = 1;

    public int Status { get; set; } = 500;
    public int? RetryAfterSeconds { get; set; }
    public int DelayMs { get; set; }
    public long AfterBytes { get; set; }
    public long Offset { get; set; }
    public string? Reason { get; set; }

    /// <summary>For <c>status</c>: the error code and message to answer with instead of the status's usual one.</summary>
    public string? ErrorCode { get; set; }
    public string? ErrorMessage { get; set; }
    public string Outcome { get; set; } = "failed";

    internal Regex? Pattern { get; set; }
    internal int Remaining { get; set; }

    public static readonly string[] Kinds =
        ["status", "latency", "drop", "expireLink", "ignoreRange", "corrupt", "failJob", "hangJob", "lostResponse"];
}

public sealed record JobFault(string Outcome, string? Reason, bool Hangs);

public sealed class FaultInjector
{
    private readonly List<FaultSpec> _faults = [];

    public void Add(FaultSpec fault)
    {
        fault.Pattern = new Regex("^" + Regex.Escape(fault.Path).Replace("\\*", ".*", StringComparison.Ordinal) + "$",
            RegexOptions.CultureInvariant);
        fault.Remaining = fault.Count;
        lock (_faults)
        {
            _faults.Add(fault);
        }
    }

    public void Clear()
    {
        lock (_faults)
        {
            _faults.Clear();
        }
    }

    public List<FaultSpec> List()
    {
        lock (_faults)
        {
            return [.. _faults];
        }
    }

    /// <summary>Takes (consumes one use of) every fault matching this request.</summary>
    public List<FaultSpec> Take(string method, string path)
    {
        var taken = new List<FaultSpec>();
        lock (_faults)
        {
            foreach (var fault in _faults)
            {
                if ((fault.Method == "*" || string.Equals(fault.Method, method, StringComparison.OrdinalIgnoreCase))
                    && fault.Pattern!.IsMatch(path))
                {
                    taken.Add(fault);
                    if (fault.Count > 0)
                    {
                        fault.Remaining--;
                    }
                }
            }

            _faults.RemoveAll(f => f.Count > 0 && f.Remaining <= 0);
        }

        return taken;
    }
}
