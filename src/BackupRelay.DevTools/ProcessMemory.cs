namespace BackupRelay.DevTools;

/// <summary>
/// This process's resident memory as Linux counts it (<c>/proc/self/status</c>): the copy's real memory, whatever
/// its buffer budget's own bookkeeping says.
/// </summary>
internal static class ProcessMemory
{
    /// <summary>Resets the peak resident set to what is resident now (<c>clear_refs</c> 5) and returns that, in KiB.</summary>
    public static long StartPeak()
    {
        GC.Collect();
        GC.WaitForPendingFinalizers();
        File.WriteAllText("/proc/self/clear_refs", "5");
        return Field("VmHWM:");
    }

    /// <summary>The most resident memory since <see cref="StartPeak"/> (or since the process started), in KiB.</summary>
    public static long PeakKib() => Field("VmHWM:");

    private static long Field(string name) =>
        long.Parse(File.ReadLines("/proc/self/status").First(l => l.StartsWith(name, StringComparison.Ordinal))[name.Length..].Trim().Split(' ')[0],
            System.Globalization.CultureInfo.InvariantCulture);
}
