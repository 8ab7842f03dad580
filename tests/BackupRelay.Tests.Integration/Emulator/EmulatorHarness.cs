using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.Emulator;

/// <summary>A fresh in-process emulator per test, with raw-HTTP helpers for asserting the wire.</summary>
public abstract class EmulatorHarness : IAsyncLifetime
{
    protected const string ProjectId = DemoSeed.ProjectId;
    protected const string GraphId = DemoSeed.GraphId;

    private RunningEmulator? _emulator;

    protected RunningEmulator Emulator => _emulator!;
    protected HttpClient Http { get; private set; } = null!;
    protected EmulatorState State => Emulator.State;

    protected virtual EmulatorSeed CreateSeed()
    {
        var seed = DemoSeed.Create();
        seed.Settings.JobPendingSeconds = 1;
        seed.Settings.JobRunningSeconds = 4;
        seed.Settings.RestorePhaseSeconds = 3;

        // These tests read the new backup's id from the add-backup answer: the opt-in variant (the page's
        // shape, job_id only, is the default; SeedPageTests and the pipeline run with it).
        seed.Settings.AddBackupReturnsBackupId = true;
        return seed;
    }

    public async Task InitializeAsync()
    {
        _emulator = await HuaweiCloudEmulator.StartAsync(CreateSeed());
        Http = new HttpClient { BaseAddress = _emulator.BaseAddress };
    }

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await _emulator!.DisposeAsync();
    }

    protected static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    protected static string PasswordAuthBody(string user = DemoSeed.UserName, string password = DemoSeed.Password,
        string domain = DemoSeed.Domain, string project = DemoSeed.Region) =>
        new JsonObject
        {
            ["auth"] = new JsonObject
            {
                ["identity"] = new JsonObject
                {
                    ["methods"] = new JsonArray("password"),
                    ["password"] = new JsonObject
                    {
                        ["user"] = new JsonObject { ["name"] = user, ["password"] = password, ["domain"] = new JsonObject { ["name"] = domain } },
                    },
                },
                ["scope"] = new JsonObject { ["project"] = new JsonObject { ["name"] = project } },
            },
        }.ToJsonString();

    protected async Task<string> TokenAsync()
    {
        using var response = await Http.PostAsync("v3/auth/tokens?nocatalog=true", Json(PasswordAuthBody()));
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
        return response.Headers.GetValues("X-Subject-Token").Single();
    }

    protected async Task<HttpResponseMessage> SendAsync(HttpMethod method, string path, string? body = null, string? token = null)
    {
        var request = new HttpRequestMessage(method, path);
        request.Headers.Add("X-Auth-Token", token ?? await TokenAsync());
        request.Headers.Accept.ParseAdd("application/json");
        if (body is not null)
        {
            request.Content = Json(body);
        }

        return await Http.SendAsync(request);
    }

    protected async Task<(int Status, JsonNode? Body)> CallAsync(HttpMethod method, string path, string? body = null, string? token = null)
    {
        using var response = await SendAsync(method, path, body, token);
        var text = await response.Content.ReadAsStringAsync();
        return ((int)response.StatusCode, text.Length == 0 ? null : JsonNode.Parse(text));
    }

    protected string Graphs => $"v2/{ProjectId}/graphs";

    protected void Advance(double seconds) => State.Clock.Advance(TimeSpan.FromSeconds(seconds));

    protected async Task AddFaultAsync(FaultSpec fault)
    {
        using var response = await Http.PostAsync("_emulator/faults", Json(JsonSerializer.Serialize(fault, new JsonSerializerOptions(JsonSerializerDefaults.Web))));
        Assert.Equal(System.Net.HttpStatusCode.Created, response.StatusCode);
    }

    protected async Task<List<RecordedRequest>> RequestsAsync() =>
        (await Http.GetFromJsonAsync<List<RecordedRequest>>("_emulator/requests"))!;

    /// <summary>Adds a backup, advances the clock past its job, and returns its id.</summary>
    protected async Task<string> CompletedBackupAsync(string token)
    {
        var (status, body) = await CallAsync(HttpMethod.Post, $"{Graphs}/{GraphId}/backups", "{}", token);
        Assert.Equal(200, status);
        Advance(10);
        return body!["backup_id"]!.GetValue<string>();
    }

    protected static string TestData(string name) =>
        File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "TestData", "seed-pages", name));
}
