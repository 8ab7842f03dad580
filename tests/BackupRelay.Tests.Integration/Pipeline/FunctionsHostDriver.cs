using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Azure.Storage.Queues;
using BackupRelay.Configuration;
using BackupRelay.Hosting;
using BackupRelay.Storage;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// Plays the Azure Functions host against the custom handler: reads every function.json at the app
/// root, delivers timer ticks and queue messages as host-format payloads (strings encoded twice,
/// numbers as strings, message properties copied into Metadata), and applies the host's retry and
/// poison rules to the handler's answers.
/// </summary>
public sealed class FunctionsHostDriver : IAsyncDisposable
{
    private readonly HttpClient _handler;
    private readonly StorageAccount _storage;
    private readonly HostQueueOptions _rules;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];

    public FunctionsHostDriver(HttpClient handler, StorageAccount storage, string appRoot, HostQueueOptions rules)
    {
        _handler = handler;
        _storage = storage;
        _rules = rules;
        foreach (var folder in Directory.GetDirectories(appRoot).Where(d => File.Exists(Path.Combine(d, "function.json"))))
        {
            var name = Path.GetFileName(folder);
            var binding = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "function.json")))!["bindings"]![0]!;
            Functions[name] = binding;
        }
    }

    public Dictionary<string, JsonNode> Functions { get; } = new(StringComparer.Ordinal);

    public int Invocations;

    public void Start()
    {
        foreach (var (name, binding) in Functions.Where(f => f.Value["type"]!.GetValue<string>() == "queueTrigger"))
        {
            Assert.Equal(BackupRelayServiceCollectionExtensions.AppStorageSetting, binding["connection"]!.GetValue<string>());
            _loops.Add(Task.Run(() => ListenAsync(name, binding["queueName"]!.GetValue<string>(), binding["name"]!.GetValue<string>(), _stop.Token)));
        }
    }

    /// <summary>A timer tick, as the host posts it.</summary>
    public async Task<HttpResponseMessage> TickAsync(bool pastDue = false)
    {
        var (name, binding) = Functions.Single(f => f.Value["type"]!.GetValue<string>() == "timerTrigger");
        var payload = new JsonObject
        {
            ["Data"] = new JsonObject
            {
                [binding["name"]!.GetValue<string>()] = new JsonObject
                {
                    ["Schedule"] = new JsonObject { ["AdjustForDST"] = true },
                    ["ScheduleStatus"] = new JsonObject { ["Last"] = "0001-01-01T00:00:00", ["Next"] = "2026-11-23T02:00:00+00:00", ["LastUpdated"] = "0001-01-01T00:00:00" },
                    ["IsPastDue"] = pastDue,
                },
            },
            ["Metadata"] = new JsonObject { ["sys"] = Sys(name) },
        };
        return await PostAsync(name, payload, CancellationToken.None);
    }

    private async Task ListenAsync(string function, string queueName, string bindingName, CancellationToken stop)
    {
        // The wire text as it is; the host's own base64 decoding is played below.
        var queue = new QueueClient(_storage.GetQueue(queueName).Uri, new Azure.Storage.StorageSharedKeyCredential(
            StorageConnection.DevelopmentAccountName, StorageConnection.DevelopmentAccountKey),
            new QueueClientOptions(StorageClientSettings.QueueVersion) { MessageEncoding = QueueMessageEncoding.None });
        var poison = _storage.GetQueue(QueueNames.Poison(queueName));
        while (!stop.IsCancellationRequested)
        {
            IReadOnlyList<Azure.Storage.Queues.Models.QueueMessage> batch;
            try
            {
                batch = (await queue.ReceiveMessagesAsync(_rules.BatchSize, TimeSpan.FromMinutes(5), stop)).Value;
            }
            catch (OperationCanceledException)
            {
                return;
            }

            if (batch.Count == 0)
            {
                await Task.Delay(50, CancellationToken.None);
                continue;
            }

            await Task.WhenAll(batch.Select(async message =>
            {
                var raw = message.Body.ToString();
                var text = Base64Text(raw) ?? raw;
                var metadata = new JsonObject
                {
                    ["DequeueCount"] = message.DequeueCount.ToString(CultureInfo.InvariantCulture),
                    ["ExpirationTime"] = message.ExpiresOn?.ToString("yyyy-MM-dd'T'HH:mm:ss+00:00", CultureInfo.InvariantCulture),
                    ["Id"] = JsonSerializer.Serialize(message.MessageId),
                    ["InsertionTime"] = message.InsertedOn?.ToString("yyyy-MM-dd'T'HH:mm:ss+00:00", CultureInfo.InvariantCulture),
                    ["NextVisibleTime"] = message.NextVisibleOn?.ToString("yyyy-MM-dd'T'HH:mm:ss+00:00", CultureInfo.InvariantCulture),
                    ["PopReceipt"] = JsonSerializer.Serialize(message.PopReceipt),
                    ["sys"] = Sys(function),
                };

                // The host adds a JSON message's top-level scalars to Metadata, overwriting keys.
                if (JsonNode.Parse(IsJson(text) ? text : "null") is JsonObject body)
                {
                    foreach (var (key, value) in body)
                    {
                        if (value is JsonValue)
                        {
                            metadata[key] = value.DeepClone();
                        }
                    }
                }

                var payload = new JsonObject
                {
                    // The string arrives JSON-encoded a second time.
                    ["Data"] = new JsonObject { [bindingName] = JsonSerializer.Serialize(text) },
                    ["Metadata"] = metadata,
                };
                using var response = await PostAsync(function, payload, CancellationToken.None);
                Interlocked.Increment(ref Invocations);
                if (response.IsSuccessStatusCode)
                {
                    await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt, CancellationToken.None);
                }
                else if (message.DequeueCount >= _rules.MaxDequeueCount)
                {
                    await poison.CreateIfNotExistsAsync(cancellationToken: CancellationToken.None);
                    await poison.SendMessageAsync(text, CancellationToken.None);
                    await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt, CancellationToken.None);
                }
                else
                {
                    await queue.UpdateMessageAsync(message.MessageId, message.PopReceipt, visibilityTimeout: _rules.VisibilityTimeout, cancellationToken: CancellationToken.None);
                }
            }));
        }
    }

    private async Task<HttpResponseMessage> PostAsync(string function, JsonObject payload, CancellationToken cancellationToken)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/" + function)
        {
            Content = new StringContent(payload.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Azure-Functions-InvocationId", Guid.NewGuid().ToString());
        request.Headers.Add("X-Azure-Functions-HostVersion", "4.1040.300.0");
        var response = await _handler.SendAsync(request, cancellationToken);
        var body = await response.Content.ReadAsStringAsync(cancellationToken);

        // The host fails an invocation whose 200 is not JSON.
        var parsed = JsonNode.Parse(body)!;
        Assert.NotNull(parsed["Logs"]);
        Assert.True(parsed.AsObject().ContainsKey("Outputs"));
        return response;
    }

    private static JsonObject Sys(string method) => new()
    {
        ["MethodName"] = method,
        ["UtcNow"] = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture),
        ["RandGuid"] = Guid.NewGuid().ToString(),
    };

    /// <summary>The UTF-8 text of a base64 wire message, or null when it is not base64.</summary>
    private static string? Base64Text(string wire)
    {
        var buffer = new byte[wire.Length];
        return Convert.TryFromBase64String(wire, buffer, out var written) && System.Text.Unicode.Utf8.IsValid(buffer.AsSpan(0, written))
            ? Encoding.UTF8.GetString(buffer, 0, written)
            : null;
    }

    private static bool IsJson(string text)
    {
        try
        {
            JsonNode.Parse(text);
            return true;
        }
        catch (JsonException)
        {
            return false;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await Task.WhenAll(_loops);
        _stop.Dispose();
    }
}

/// <summary>
/// The Functions host in front of forwarded HTTP functions: finds the function whose route matches,
/// checks <c>authLevel: function</c> keys (<c>x-functions-key</c> or <c>?code=</c>), then forwards
/// the request unchanged.
/// </summary>
public sealed class ForwardingHostHandler(FunctionsHostDriver driver, string hostKey) : DelegatingHandler
{
    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var path = request.RequestUri!.AbsolutePath;
        var function = driver.Functions.Values.FirstOrDefault(b => b["type"]!.GetValue<string>() == "httpTrigger" && Matches(b, request.Method.Method, path))
            ?? throw new InvalidOperationException($"no HTTP function serves {request.Method} {path}");
        if (function["authLevel"]!.GetValue<string>() == "function")
        {
            var query = System.Web.HttpUtility.ParseQueryString(request.RequestUri.Query);
            var key = request.Headers.TryGetValues("x-functions-key", out var values) ? values.First() : query["code"];
            if (key != hostKey)
            {
                return new HttpResponseMessage(System.Net.HttpStatusCode.Unauthorized);
            }
        }

        return await base.SendAsync(request, cancellationToken);
    }

    private static bool Matches(JsonNode binding, string method, string path)
    {
        if (!binding["methods"]!.AsArray().Any(m => string.Equals(m!.GetValue<string>(), method, StringComparison.OrdinalIgnoreCase)))
        {
            return false;
        }

        var route = "api/" + binding["route"]!.GetValue<string>();
        var pattern = "^/" + System.Text.RegularExpressions.Regex.Replace(route, @"\{[^}]+\}", "[^/]+") + "$";
        return System.Text.RegularExpressions.Regex.IsMatch(path, pattern);
    }
}
