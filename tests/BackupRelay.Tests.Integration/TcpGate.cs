using System.Diagnostics;
using System.Globalization;

namespace BackupRelay.Tests.Integration;

/// <summary>
/// A loopback TCP forwarder that can be shut: while shut, every open connection is reset and new ones are
/// refused, as when a storage endpoint goes away; reopened, it listens on the same port again.
/// <para>
/// Tests take storage away with this rather than by stopping Azurite: Azurite's shutdown saves its database
/// without waiting for the requests still in flight (the HTTP server's stop is not awaited before the stores
/// close), so a restart can lose writes it had acknowledged — which real storage never does, and which
/// strands a run whose next message was acknowledged and then lost.
/// </para>
/// <para>
/// The forwarder is <c>tcp-gate.js</c>, a few lines on Node's own <c>net</c> module, in a process of its own so
/// that a busy test process cannot slow the traffic it carries. Written here because no package served to
/// this project offers a controllable TCP proxy (Toxiproxy is a separate Go server).
/// </para>
/// </summary>
public sealed class TcpGate : IDisposable
{
    private readonly Process _process;

    private TcpGate(Process process, int port)
    {
        _process = process;
        Port = port;
    }

    /// <summary>The port clients connect to.</summary>
    public int Port { get; }

    /// <summary>A gate on a free loopback port in front of <paramref name="targetPort"/>, open.</summary>
    public static TcpGate Open(int targetPort)
    {
        var script = Path.Combine(Azurite.RepositoryRoot(), "tests", "BackupRelay.Tests.Integration", "tcp-gate.js");
        var start = new ProcessStartInfo("node") { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(targetPort.ToString(CultureInfo.InvariantCulture));
        var process = Process.Start(start)!;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => NodeServer.Kill(process);
        _ = process.StandardError.ReadToEndAsync();
        var line = process.StandardOutput.ReadLine() ?? throw new InvalidOperationException("tcp-gate.js did not start");
        return new TcpGate(process, int.Parse(line["listening ".Length..], CultureInfo.InvariantCulture));
    }

    /// <summary>Refuses new connections and resets every open one.</summary>
    public void Shut() => Command("shut");

    /// <summary>Listens again, on the same port.</summary>
    public void Reopen() => Command("open");

    /// <summary>Carries no byte either way (open connections stay open, new ones are accepted and left waiting): a hung endpoint.</summary>
    public void Freeze() => Command("freeze");

    /// <summary>Carries bytes again, for the connections held meanwhile too.</summary>
    public void Thaw() => Command("thaw");

    public void Dispose()
    {
        NodeServer.Kill(_process);
        _process.Dispose();
    }

    private void Command(string command)
    {
        _process.StandardInput.WriteLine(command);
        _process.StandardInput.Flush();
        var answer = _process.StandardOutput.ReadLine();
        if (answer != command)
        {
            throw new InvalidOperationException($"tcp-gate.js answered '{answer}' to '{command}'");
        }
    }
}
