using System.Diagnostics.Metrics;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using BackupRelay.Copying;
using BackupRelay.HuaweiCloud.Ges;
using BackupRelay.Messaging;
using BackupRelay.Runs;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace BackupRelay.Tests.Unit.Handlers;

/// <summary>
/// The file copier handler on fakes — GES's download links, a source that serves bytes over a fake HTTP handler, a
/// directory for the destination: which messages it acts on, and how a file's end ends the run.
/// </summary>
public sealed class CopyBackupFileHandlerTests : HandlerFixture, IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "backuprelay-handler-" + Guid.NewGuid().ToString("N"));
    private readonly Dictionary<string, byte[]> _source = new(StringComparer.Ordinal);
    private readonly ServiceProvider _services = new ServiceCollection().AddMetrics().BuildServiceProvider();

    public void Dispose()
    {
        _services.Dispose();
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }

    private CopyBackupFileHandler Handler()
    {
        var copyOptions = Microsoft.Extensions.Options.Options.Create(new CopyOptions { BlockSizeBytes = 64 * 1024, MaxConcurrency = 2 });
        var copier = new FileCopier(new HttpClient(new SourceHandler(_source)), new CopyBufferBudget(8L << 20), new HashStateCache(), copyOptions, Clock,
            NullLogger<FileCopier>.Instance);
        return new CopyBackupFileHandler(Runs, GesClient, Sent, copier, new LocalDirectoryCopyDestination(_directory), Options, copyOptions, Clock,
            NullLogger<CopyBackupFileHandler>.Instance, new Telemetry.BackupRelayMetrics(_services.GetRequiredService<IMeterFactory>()));
    }

    private Task<HandlerResult> CopyAsync(string file, int attempt = 0) =>
        Handler().HandleAsync(JsonSerializer.Serialize(new CopyBackupFileMessage(MessageParser.CurrentVersion, "run-1", file, null, attempt),
            BackupRelayJson.Default.CopyBackupFileMessage), 1, CancellationToken.None);

    /// <summary>A backup run at its copying step with these files, each served by the source with its bytes.</summary>
    private void Copying(params (string Name, int Size)[] files)
    {
        var run = BackingUp();
        run.Step = RunStep.Copying;
        run.BackupId = "b-1";
        run.GraphName = "orders";
        run.Files = [.. files.Select(f => new RunFile { Name = f.Name, SizeKb = f.Size / 1024 })];
        Runs.Put(run);
        Ges.Files["b-1"] = [.. files.Select(f => new GesBackupFile { Name = f.Name, Size = f.Size / 1024, DownloadLink = $"https://obs.example/b-1/{f.Name}" })];
        foreach (var (name, size) in files)
        {
            var bytes = new byte[size];
            new Random(size).NextBytes(bytes);
            _source[name] = bytes;
        }
    }

    [Fact]
    public async Task The_last_file_copied_and_verified_writes_the_manifest_and_ends_the_run_succeeded()
    {
        Copying(("a.zip", 100_000), ("b.zip", 3_000));

        Assert.Equal(HandlerResult.Done, await CopyAsync("a.zip"));
        Assert.Equal(RunStatus.Running, Runs["run-1"].Status);
        Assert.False(File.Exists(Path.Combine(_directory, "orders", "b-1", CopyBackupFileHandler.ManifestName)));

        Assert.Equal(HandlerResult.Done, await CopyAsync("b.zip"));

        var run = Runs["run-1"];
        Assert.Equal((RunStatus.Succeeded, RunStep.Done), (run.Status, run.Step));
        Assert.All(run.Files, f => Assert.Equal((RunFileStatus.Completed, "source-md5"), (f.Status, f.Verification)));
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(_source["a.zip"])), run.FileNamed("a.zip").Sha256);
        Assert.Equal(_source["a.zip"], await File.ReadAllBytesAsync(Path.Combine(_directory, "orders", "b-1", "a.zip")));
        Assert.True(File.Exists(Path.Combine(_directory, "orders", "b-1", CopyBackupFileHandler.ManifestName)));
    }

    [Fact]
    public async Task A_redelivered_message_for_a_copied_file_changes_nothing()
    {
        Copying(("a.zip", 10_000));
        await CopyAsync("a.zip");
        var writes = Runs.Writes;

        Assert.Equal(HandlerResult.Done, await CopyAsync("a.zip"));

        Assert.Equal(writes, Runs.Writes);
        Assert.Equal(RunStatus.Succeeded, Runs["run-1"].Status);
    }

    [Fact]
    public async Task A_file_whose_link_is_gone_fails_alone_and_the_run_ends_partially_failed()
    {
        Copying(("a.zip", 10_000), ("b.zip", 10_000));
        Ges.Files["b-1"] = [.. Ges.Files["b-1"].Where(f => f.Name == "a.zip")];

        await CopyAsync("b.zip");
        await CopyAsync("a.zip");

        var run = Runs["run-1"];
        Assert.Equal(RunStatus.PartiallyFailed, run.Status);
        Assert.Equal(RunFileStatus.Failed, run.FileNamed("b.zip").Status);
        var error = Assert.Single(run.Errors);
        Assert.Equal(("copying", "b.zip: the file is no longer listed in the backup's download links"), (error.Step, error.Reason));
    }

    [Fact]
    public async Task A_message_for_a_file_the_run_does_not_list_yet_comes_back_and_a_bad_attempt_is_parked()
    {
        Copying(("a.zip", 1_000));

        Assert.Equal(HandlerOutcome.Retry, (await CopyAsync("z.zip")).Outcome);
        Assert.Equal(HandlerOutcome.Park, (await CopyAsync("a.zip", attempt: -1)).Outcome);
        Assert.Equal(HandlerOutcome.Park, (await CopyAsync("../a.zip")).Outcome);
        Assert.Equal(RunFileStatus.Pending, Runs["run-1"].FileNamed("a.zip").Status);
    }

    /// <summary>A source that serves whole files or ranges of them, with its MD5 as the ETag as OBS gives it for a plain upload.</summary>
    private sealed class SourceHandler(Dictionary<string, byte[]> files) : HttpMessageHandler
    {
        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var name = request.RequestUri!.Segments[^1];
            if (!files.TryGetValue(name, out var bytes))
            {
                return Task.FromResult(new HttpResponseMessage(HttpStatusCode.NotFound));
            }

            var (from, to) = request.Headers.Range?.Ranges.Single() is { } range
                ? (range.From ?? 0, Math.Min(range.To ?? bytes.Length - 1, bytes.Length - 1))
                : (0L, bytes.Length - 1L);
            var body = bytes[(int)from..(int)(to + 1)];
            var response = new HttpResponseMessage(request.Headers.Range is null ? HttpStatusCode.OK : HttpStatusCode.PartialContent)
            {
                Content = new ByteArrayContent(body),
            };
            response.Headers.ETag = new EntityTagHeaderValue($"\"{Convert.ToHexStringLower(MD5.HashData(bytes))}\"");
            response.Headers.AcceptRanges.Add("bytes");
            if (request.Headers.Range is not null)
            {
                response.Content.Headers.ContentRange = new ContentRangeHeaderValue(from, to, bytes.Length);
            }

            return Task.FromResult(response);
        }
    }
}
