using System.Diagnostics;
using System.Text.RegularExpressions;

namespace BackupRelay.Tests.Integration;

/// <summary>
/// One real s3rver (the pinned npm package): an S3-compatible server independent of the project's
/// emulator, on a free loopback port, keeping its objects in a temporary directory. It knows one key
/// pair (S3RVER / S3RVER) and checks the access key id; its Signature V4 check is unimplemented
/// (s3rver 3.7.1), so signatures are proved against the emulator.
/// </summary>
public sealed partial class S3rver : IAsyncDisposable
{
    public const string AccessKey = "S3RVER";
    public const string SecretKey = "S3RVER";
    public const string Bucket = "restores";

    private readonly Process _process;

    private S3rver(Process process, int port, string directory)
    {
        _process = process;
        Port = port;
        Directory = directory;
    }

    public int Port { get; }

    /// <summary>Where s3rver keeps its buckets and objects.</summary>
    public string Directory { get; }

    public Uri Endpoint => new($"http://127.0.0.1:{Port}/");

    public static async Task<S3rver> StartAsync()
    {
        var script = Path.Combine(Azurite.RepositoryRoot(), "node_modules", "s3rver", "bin", "s3rver.js");
        if (!File.Exists(script))
        {
            throw new InvalidOperationException($"s3rver is not installed ({script}): run 'npm ci' at the repository root (build/test.sh does).");
        }

        var directory = System.IO.Directory.CreateTempSubdirectory("backuprelay-s3rver-").FullName;
        var process = NodeServer.Start(script, directory,
            ["--directory", directory, "--address", "127.0.0.1", "--port", "0", "--silent", "--no-vhost-buckets", "--configure-bucket", Bucket]);

        int? port = null;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        while (port is null && await process.StandardOutput.ReadLineAsync(timeout.Token) is { } line)
        {
            var match = Listening().Match(line);
            if (match.Success)
            {
                port = int.Parse(match.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            }
        }

        if (port is null)
        {
            throw new InvalidOperationException("s3rver did not start: " + await process.StandardError.ReadToEndAsync());
        }

        NodeServer.Drain(process);
        return new S3rver(process, port.Value, directory);
    }

    public ValueTask DisposeAsync()
    {
        NodeServer.Kill(_process);
        _process.Dispose();
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }

        return ValueTask.CompletedTask;
    }

    [GeneratedRegex(@"S3rver listening on [^:]+:(\d+)")]
    private static partial Regex Listening();
}
