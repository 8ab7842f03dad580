using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;

namespace BackupRelay.Tests.Integration;

/// <summary>
/// A loopback TCP forwarder that can be shut: while shut, every open connection is reset and new ones are
/// refused, as when a storage endpoint goes away; reopened, it listens on the same port again.
/// <para>
/// Tests take storage away with this rather than by stopping Azurite: Azurite's shutdown saves its database
/// without waiting for the requests still in flight (the HTTP server's stop is not awaited before the stores
/// close), so a restart can lose writes it had acknowledged — which real storage never does, and which
/// strands a run whose next message was acknowledged and then lost. Written here because no package served
/// to this project offers a controllable TCP proxy (Toxiproxy is a separate Go server).
/// </para>
/// </summary>
public sealed class TcpGate : IDisposable
{
    private readonly int _targetPort;
    private readonly ConcurrentDictionary<Socket, byte> _open = new();
    private readonly object _gate = new();
    private TcpListener? _listener;

    private TcpGate(int targetPort)
    {
        _targetPort = targetPort;
        Port = Listen(0);
    }

    /// <summary>The port clients connect to.</summary>
    public int Port { get; }

    public bool IsShut => _listener is null;

    /// <summary>A gate on a free loopback port in front of <paramref name="targetPort"/>, open.</summary>
    public static TcpGate Open(int targetPort) => new(targetPort);

    /// <summary>Refuses new connections and resets every open one.</summary>
    public void Shut()
    {
        lock (_gate)
        {
            _listener?.Stop();
            _listener = null;
        }

        foreach (var socket in _open.Keys)
        {
            Reset(socket);
        }
    }

    /// <summary>Listens again, on the same port.</summary>
    public void Reopen()
    {
        lock (_gate)
        {
            if (_listener is null)
            {
                Listen(Port);
            }
        }
    }

    public void Dispose() => Shut();

    private int Listen(int port)
    {
        var listener = new TcpListener(IPAddress.Loopback, port);
        // SO_REUSEADDR alone (SOL_SOCKET 1, option 2 on Linux): listening again on the port while its old
        // connections linger. .NET's ReuseAddress would add SO_REUSEPORT, which lets another listener share a port.
        listener.Server.SetRawSocketOption(1, 2, BitConverter.GetBytes(1));
        listener.Start();
        _listener = listener;
        _ = AcceptAsync(listener);
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private async Task AcceptAsync(TcpListener listener)
    {
        while (true)
        {
            Socket client;
            try
            {
                client = await listener.AcceptSocketAsync();
            }
            catch (Exception ex) when (ex is SocketException or ObjectDisposedException or InvalidOperationException)
            {
                return; // shut
            }

            _ = ForwardAsync(client);
        }
    }

    private async Task ForwardAsync(Socket client)
    {
        var server = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        client.NoDelay = true;
        _open[client] = 0;
        _open[server] = 0;
        try
        {
            await server.ConnectAsync(IPAddress.Loopback, _targetPort);
            if (IsShut)
            {
                return;
            }

            // Each direction passes its end on (FIN); shutting the gate resets both sockets instead.
            await Task.WhenAll(PumpAsync(client, server), PumpAsync(server, client));
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            _open.TryRemove(client, out _);
            _open.TryRemove(server, out _);
            Reset(client);
            Reset(server);
        }
    }

    private static async Task PumpAsync(Socket from, Socket to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            int read;
            while ((read = await from.ReceiveAsync(buffer, SocketFlags.None)) > 0)
            {
                var sent = 0;
                while (sent < read)
                {
                    sent += await to.SendAsync(buffer.AsMemory(sent, read - sent), SocketFlags.None);
                }
            }

            to.Shutdown(SocketShutdown.Send);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }
    }

    /// <summary>Closes with RST (linger 0), as a vanished endpoint does, rather than an orderly FIN.</summary>
    private static void Reset(Socket socket)
    {
        try
        {
            socket.LingerState = new LingerOption(true, 0);
        }
        catch (Exception ex) when (ex is SocketException or ObjectDisposedException)
        {
        }

        socket.Dispose();
    }
}
