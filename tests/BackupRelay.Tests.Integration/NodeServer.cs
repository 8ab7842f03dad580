using System.Diagnostics;

namespace BackupRelay.Tests.Integration;

/// <summary>A pinned npm server (Azurite, s3rver) run with the machine's Node.js for the tests: started, drained, killed with the test process.</summary>
internal static class NodeServer
{
    /// <summary>Starts <c>node script args…</c> in <paramref name="workingDirectory"/>, its output redirected, killed when the test process exits.</summary>
    public static Process Start(string script, string workingDirectory, IEnumerable<string> arguments) =>
        Start(script, workingDirectory, new Dictionary<string, string?>(), arguments);

    /// <summary>As above, with environment variables set (null: left unset).</summary>
    public static Process Start(string script, string workingDirectory, IReadOnlyDictionary<string, string?> environment, IEnumerable<string> arguments)
    {
        var start = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = workingDirectory };
        foreach (var (name, value) in environment)
        {
            if (value is not null)
            {
                start.Environment[name] = value;
            }
        }

        start.ArgumentList.Add(script);
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        var process = Process.Start(start)!;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Kill(process);
        return process;
    }

    /// <summary>Keeps reading the rest of its output, so it never blocks on a full pipe.</summary>
    public static void Drain(Process process)
    {
        _ = process.StandardOutput.ReadToEndAsync();
        _ = process.StandardError.ReadToEndAsync();
    }

    public static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
    }
}
