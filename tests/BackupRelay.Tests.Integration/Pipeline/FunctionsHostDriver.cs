using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Azure.Storage.Queues;
using BackupRelay.Configuration;
using BackupRelay.Hosting;
using BackupRelay.Storage;

namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// Plays the Azure Functions host against the custom handler, as strictly as the host's own code
/// (azure-functions-host <c>src/WebJobs.Script/Workers/Http/DefaultHttpWorkerService.cs</c>,
/// <c>Workers/MessageExtensions/ScriptInvocationContextExtensions.cs</c>, <c>Utility.ApplyBindingData</c>,
/// and the queue extension's <c>QueueServiceClientProvider</c>):
/// <list type="bullet">
/// <item>binding data goes through the host's encoding: a string is JSON-encoded again, a number
/// becomes its text, a date-time loses its fractions, an object stays an object;</item>
/// <item>a JSON queue message's top-level properties (not arrays, not nulls) are added to the binding
/// data as text (<c>1</c> arrives as <c>"\"1\""</c>, <c>true</c> as <c>"\"True\""</c>) or objects,
/// overriding built-in keys case-insensitively;</item>
/// <item>a message that is not base64 goes straight to <c>&lt;queue&gt;-poison</c> without an invocation;</item>
/// <item>a 2xx answer is read only with a JSON content type; a non-2xx answer's body and Logs are dropped;</item>
/// <item>up to <c>batchSize + newBatchThreshold</c> invocations in flight per function, refilled as they finish;</item>
/// <item>an invocation that outlives <c>functionTimeout</c> fails, and the whole handler is restarted
/// (every invocation in flight dies with it).</item>
/// </list>
/// </summary>
public sealed class FunctionsHostDriver : IAsyncDisposable
{
    private readonly StorageAccount _storage;
    private readonly HostQueueOptions _rules;
    private readonly Func<Task<HttpClient>>? _restart;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private readonly SemaphoreSlim _restartGate = new(1, 1);
    private HttpClient _handler;
    private int _generation;

    /// <summary>While the handler restarts the host invokes nothing (its listeners stop with the job host).</summary>
    private volatile Task _restarting = Task.CompletedTask;

    /// <param name="restart">Kills the handler and starts a new one, returning a client for it; null: timeouts only fail the invocation.</param>
    public FunctionsHostDriver(HttpClient handler, StorageAccount storage, string appRoot, HostQueueOptions rules,
        TimeSpan? functionTimeout = null, Func<Task<HttpClient>>? restart = null)
    {
        _handler = handler;
        _storage = storage;
        _rules = rules;
        _restart = restart;
        var host = JsonNode.Parse(File.ReadAllText(Path.Combine(appRoot, "host.json")))!;
        FunctionTimeout = functionTimeout ?? TimeSpan.Parse(host["functionTimeout"]!.GetValue<string>(), CultureInfo.InvariantCulture);
        foreach (var folder in Directory.GetDirectories(appRoot).Where(d => File.Exists(Path.Combine(d, "function.json"))))
        {
            var name = Path.GetFileName(folder);
            var binding = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "function.json")))!["bindings"]![0]!;
            Functions[name] = binding;
        }
    }

    public Dictionary<string, JsonNode> Functions { get; } = new(StringComparer.Ordinal);

    public TimeSpan FunctionTimeout { get; }

    public int Invocations;

    /// <summary>Times the handler was restarted because an invocation outlived <see cref="FunctionTimeout"/>.</summary>
    public int Restarts;

    /// <summary>Most invocations of one function in flight at once.</summary>
    public int MaxInFlight;

    /// <summary>Answers the real host would refuse (e.g. a 2xx without a JSON content type): each one a failed invocation.</summary>
    public List<string> ContractViolations { get; } = [];

    /// <summary>What the host would log from successful invocations' <c>Logs</c> (failed ones' are dropped).</summary>
    public List<string> HostLogs { get; } = [];

    public void Start()
    {
        foreach (var (name, binding) in Functions.Where(f => f.Value["type"]!.GetValue<string>() == "queueTrigger"))
        {
            Assert.Equal(BackupRelayServiceCollectionExtensions.AppStorageSetting, binding["connection"]!.GetValue<string>());
            _loops.Add(Task.Run(() => ListenAsync(name, binding["queueName"]!.GetValue<string>(), binding["name"]!.GetValue<string>(), _stop.Token)));
        }
    }

    /// <summary>The shapes the host sends a timer's <c>ScheduleStatus</c> in.</summary>
    public enum ScheduleStatusShape
    {
        /// <summary>Dates as the host's serializer writes them, with seven fractional digits.</summary>
        WithFractions,

        /// <summary>No schedule status at all (no monitor, or the first run).</summary>
        Null,
    }

    /// <summary>A timer tick, as the host posts it.</summary>
    public async Task<InvocationAnswer> TickAsync(bool pastDue = false, ScheduleStatusShape shape = ScheduleStatusShape.WithFractions)
    {
        var (name, binding) = Functions.Single(f => f.Value["type"]!.GetValue<string>() == "timerTrigger");
        var next = DateTime.UtcNow.Date.AddDays(1).AddHours(2).AddTicks(1234567);
        JsonNode? status = shape == ScheduleStatusShape.Null ? null : new JsonObject
        {
            ["Last"] = HostDate(next.AddDays(-1)),
            ["Next"] = HostDate(next),
            ["LastUpdated"] = HostDate(next.AddDays(-1).AddTicks(-7654321)),
        };
        var payload = new JsonObject
        {
            ["Data"] = new JsonObject
            {
                [binding["name"]!.GetValue<string>()] = new JsonObject
                {
                    ["Schedule"] = new JsonObject { ["AdjustForDST"] = true },
                    ["ScheduleStatus"] = status,
                    ["IsPastDue"] = pastDue,
                },
            },
            ["Metadata"] = new JsonObject { ["sys"] = Sys(name) },
        };
        return await InvokeAsync(name, payload);
    }

    private async Task ListenAsync(string function, string queueName, string bindingName, CancellationToken stop)
    {
        // The wire text as it is; the host's own base64 decoding is played below.
        var queue = new QueueClient(_storage.GetQueue(queueName).Uri, new Azure.Storage.StorageSharedKeyCredential(
            StorageConnection.DevelopmentAccountName, StorageConnection.DevelopmentAccountKey),
            new QueueClientOptions(StorageClientSettings.QueueVersion) { MessageEncoding = QueueMessageEncoding.None });
        var poison = _storage.GetQueue(QueueNames.Poison(queueName));
        var rawPoison = new QueueClient(poison.Uri, new Azure.Storage.StorageSharedKeyCredential(
            StorageConnection.DevelopmentAccountName, StorageConnection.DevelopmentAccountKey),
            new QueueClientOptions(StorageClientSettings.QueueVersion) { MessageEncoding = QueueMessageEncoding.None });
        var inFlight = new List<Task>();
        while (!stop.IsCancellationRequested)
        {
            // The queue listener fetches a new batch once no more than newBatchThreshold are running.
            inFlight.RemoveAll(t => t.IsCompleted);
            if (inFlight.Count > _rules.NewBatchThreshold)
            {
                await Task.WhenAny(inFlight);
                continue;
            }

            IReadOnlyList<Azure.Storage.Queues.Models.QueueMessage> batch;
            try
            {
                batch = (await queue.ReceiveMessagesAsync(_rules.BatchSize, TimeSpan.FromMinutes(10), stop)).Value;
            }
            catch (OperationCanceledException)
            {
                break;
            }

            if (batch.Count == 0)
            {
                await Task.WhenAny(Task.Delay(50, CancellationToken.None), inFlight.Count > 0 ? Task.WhenAny(inFlight) : Task.Delay(50, CancellationToken.None));
                continue;
            }

            foreach (var message in batch)
            {
                inFlight.Add(ProcessAsync(function, bindingName, queue, poison, rawPoison, message));
            }

            InterlockedMax(ref MaxInFlight, inFlight.Count(t => !t.IsCompleted));
        }

        await Task.WhenAll(inFlight);
    }

    private async Task ProcessAsync(string function, string bindingName, QueueClient queue, QueueClient poison, QueueClient rawPoison,
        Azure.Storage.Queues.Models.QueueMessage message)
    {
        var raw = message.Body.ToString();
        if (Base64Text(raw) is not { } text)
        {
            // The queue extension's MessageDecodingFailed handler: copied as is to the poison queue, never invoked.
            await rawPoison.CreateIfNotExistsAsync(cancellationToken: CancellationToken.None);
            await rawPoison.SendMessageAsync(raw, CancellationToken.None);
            await queue.DeleteMessageAsync(message.MessageId, message.PopReceipt, CancellationToken.None);
            return;
        }

        // Binding data as the queue trigger gives it, then the message's own top-level properties.
        var bindingData = new Dictionary<string, object?>(StringComparer.OrdinalIgnoreCase)
        {
            ["QueueTrigger"] = text,
            ["DequeueCount"] = message.DequeueCount,
            ["ExpirationTime"] = message.ExpiresOn ?? DateTimeOffset.MaxValue,
            ["Id"] = message.MessageId,
            ["InsertionTime"] = message.InsertedOn ?? DateTimeOffset.UtcNow,
            ["NextVisibleTime"] = message.NextVisibleOn ?? DateTimeOffset.UtcNow,
            ["PopReceipt"] = message.PopReceipt,
        };
        ApplyBindingData(text, bindingData);
        var metadata = new JsonObject();
        foreach (var (key, value) in bindingData)
        {
            // The host leaves out nulls and the trigger value itself (any key ending in "trigger").
            if (value is not null && !key.EndsWith("trigger", StringComparison.OrdinalIgnoreCase))
            {
                metadata[key] = HostValue(value);
            }
        }

        metadata["sys"] = Sys(function);
        var payload = new JsonObject
        {
            // The trigger value is a string: JSON-encoded a second time.
            ["Data"] = new JsonObject { [bindingName] = JsonSerializer.Serialize(text) },
            ["Metadata"] = metadata,
        };
        var answer = await InvokeAsync(function, payload);
        Interlocked.Increment(ref Invocations);
        if (answer.Succeeded)
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
    }

    /// <summary>What the host makes of one invocation: success with the handler's Logs, or a failure.</summary>
    public sealed record InvocationAnswer(bool Succeeded, HttpStatusCode? Status, string? Failure, IReadOnlyList<string> Logs);

    private async Task<InvocationAnswer> InvokeAsync(string function, JsonObject payload)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/" + function)
        {
            Content = new StringContent(payload.ToJsonString(), Encoding.UTF8, "application/json"),
        };
        request.Headers.Add("X-Azure-Functions-InvocationId", Guid.NewGuid().ToString());
        request.Headers.Add("X-Azure-Functions-HostVersion", "4.1037.0.0");
        request.Headers.UserAgent.ParseAdd("AzureFunctionsHost/4.1037.0.0");
        await _restarting;
        using var timeout = new CancellationTokenSource(FunctionTimeout);
        var handler = _handler;
        var generation = Volatile.Read(ref _generation);
        HttpResponseMessage response;
        try
        {
            response = await handler.SendAsync(request, timeout.Token);
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            // "Timeout value of ... exceeded by function": the invocation fails and the worker is restarted.
            await RestartAsync(generation);
            return new(false, null, "function timeout", []);
        }
        catch (HttpRequestException ex)
        {
            // The handler died under this invocation (e.g. restarted for another one's timeout).
            return new(false, null, ex.Message, []);
        }

        using (response)
        {
            if (!response.IsSuccessStatusCode)
            {
                // EnsureSuccessStatusCode: the body, Logs included, is never read.
                return new(false, response.StatusCode, $"HTTP {(int)response.StatusCode}", []);
            }

            // HttpContent.ReadAsAsync<T> only reads media types its JSON formatter supports.
            var mediaType = response.Content.Headers.ContentType?.MediaType;
            if (mediaType is not ("application/json" or "text/json"))
            {
                return Violation($"{function}: a {(int)response.StatusCode} answer with content type '{mediaType}' is not read by the host");
            }

            JsonObject result;
            try
            {
                result = JsonNode.Parse(await response.Content.ReadAsStringAsync(CancellationToken.None)) as JsonObject
                    ?? throw new JsonException("not an object");
            }
            catch (JsonException ex)
            {
                return Violation($"{function}: the answer is not a JSON object ({ex.Message})");
            }

            var logs = result["Logs"] is JsonArray array ? array.Select(l => l?.ToString() ?? "").ToList() : [];
            lock (HostLogs)
            {
                HostLogs.AddRange(logs);
            }

            return new(true, response.StatusCode, null, logs);
        }

        InvocationAnswer Violation(string what)
        {
            lock (ContractViolations)
            {
                ContractViolations.Add(what);
            }

            return new(false, response.StatusCode, what, []);
        }
    }

    private async Task RestartAsync(int generation)
    {
        if (_restart is null)
        {
            return;
        }

        await _restartGate.WaitAsync();
        try
        {
            // One restart per timed-out generation: invocations that die with it do not restart it again.
            if (Volatile.Read(ref _generation) != generation)
            {
                return;
            }

            var restarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            _restarting = restarted.Task;
            try
            {
                _handler = await _restart();
                Interlocked.Increment(ref Restarts);
                Volatile.Write(ref _generation, generation + 1);
            }
            finally
            {
                restarted.SetResult();
            }
        }
        finally
        {
            _restartGate.Release();
        }
    }

    /// <summary>
    /// <c>Utility.ApplyBindingData</c>: a JSON object message adds its top-level properties, except
    /// arrays and nulls; objects stay objects, every other value becomes its text as Json.NET's
    /// <c>(string)JToken</c> gives it.
    /// </summary>
    private static void ApplyBindingData(string text, Dictionary<string, object?> bindingData)
    {
        var trimmed = text.Trim();
        if (!(trimmed.StartsWith('{') && trimmed.EndsWith('}')))
        {
            return;
        }

        JsonObject parsed;
        try
        {
            parsed = JsonNode.Parse(trimmed) as JsonObject ?? throw new JsonException();
        }
        catch (JsonException)
        {
            return;
        }

        foreach (var (key, value) in parsed)
        {
            switch (value)
            {
                case null or JsonArray:
                    break;
                case JsonObject nested:
                    bindingData[key] = nested.DeepClone();
                    break;
                case JsonValue scalar:
                    bindingData[key] = scalar.GetValueKind() switch
                    {
                        JsonValueKind.String => scalar.GetValue<string>(),
                        JsonValueKind.True => "True",
                        JsonValueKind.False => "False",
                        JsonValueKind.Number when long.TryParse(scalar.ToJsonString(), NumberStyles.Integer, CultureInfo.InvariantCulture, out var n)
                            => n.ToString(CultureInfo.InvariantCulture),
                        JsonValueKind.Number => scalar.GetValue<double>().ToString("R", CultureInfo.InvariantCulture),
                        _ => null,
                    };
                    break;
            }
        }
    }

    /// <summary><c>GetHttpScriptInvocationContextValue</c>: how one binding-data value goes on the wire.</summary>
    private static JsonNode HostValue(object value) => value switch
    {
        // JObject.FromObject fails on a string, so JsonConvert.SerializeObject encodes it again.
        string s => JsonValue.Create(JsonSerializer.Serialize(s)),
        long or int => JsonValue.Create(Convert.ToString(value, CultureInfo.InvariantCulture)!),

        // DateTimeOffset.Parse(value.ToString()): the fractions are gone.
        DateTimeOffset time => JsonValue.Create(time.ToString("yyyy-MM-dd'T'HH:mm:sszzz", CultureInfo.InvariantCulture)),
        JsonNode node => node,
        _ => throw new ArgumentException($"no host encoding for {value.GetType()}"),
    };

    /// <summary>A DateTime as Json.NET writes it: up to seven fractional digits, trailing zeros trimmed.</summary>
    private static string HostDate(DateTime utc) =>
        utc.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'+00:00'", CultureInfo.InvariantCulture);

    private static JsonObject Sys(string method) => new()
    {
        ["MethodName"] = method,
        ["UtcNow"] = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.FFFFFFF'Z'", CultureInfo.InvariantCulture),
        ["RandGuid"] = Guid.NewGuid().ToString(),
    };

    /// <summary>The text of a base64 wire message as the SDK decodes it (invalid UTF-8 becomes U+FFFD), or null when it is not base64.</summary>
    private static string? Base64Text(string wire)
    {
        var buffer = new byte[wire.Length];
        return Convert.TryFromBase64String(wire, buffer, out var written) ? Encoding.UTF8.GetString(buffer, 0, written) : null;
    }

    private static void InterlockedMax(ref int target, int value)
    {
        int seen;
        while (value > (seen = Volatile.Read(ref target)) && Interlocked.CompareExchange(ref target, value, seen) != seen)
        {
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
/// The Functions host in front of forwarded HTTP functions: finds the function whose route and method
/// match (case-insensitively, as ASP.NET routing does; nothing matching is a 404), checks
/// <c>authLevel</c> keys (<c>x-functions-key</c> or <c>?code=</c>: the function's own keys, a host key or
/// the master key; <c>admin</c> only the master key), then forwards the request unchanged without
/// following redirects.
/// </summary>
public sealed class ForwardingHostHandler : DelegatingHandler
{
    private readonly FunctionsHostDriver _driver;
    private readonly HostKeys _keys;

    public ForwardingHostHandler(FunctionsHostDriver driver, HostKeys keys)
    {
        _driver = driver;
        _keys = keys;
        InnerHandler = new HttpClientHandler { AllowAutoRedirect = false, UseCookies = false };
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var path = request.RequestUri!.AbsolutePath;
        var match = _driver.Functions.FirstOrDefault(f => f.Value["type"]!.GetValue<string>() == "httpTrigger" && Matches(f.Value, request.Method.Method, path));
        if (match.Key is null)
        {
            return new HttpResponseMessage(HttpStatusCode.NotFound) { RequestMessage = request };
        }

        var level = match.Value["authLevel"]?.GetValue<string>() ?? "function";
        if (level != "anonymous")
        {
            var query = System.Web.HttpUtility.ParseQueryString(request.RequestUri.Query);
            var key = request.Headers.TryGetValues("x-functions-key", out var values) ? values.First() : query["code"];
            if (!_keys.Authorizes(match.Key, level, key))
            {
                return new HttpResponseMessage(HttpStatusCode.Unauthorized) { RequestMessage = request };
            }
        }

        return await base.SendAsync(request, cancellationToken);
    }

    private static bool Matches(JsonNode binding, string method, string path)
    {
        if (binding["methods"] is JsonArray methods && !methods.Any(m => string.Equals(m!.GetValue<string>(), method, StringComparison.OrdinalIgnoreCase)))
        {
            return false;
        }

        var route = "api/" + binding["route"]!.GetValue<string>();
        var pattern = "^/" + Regex.Replace(route, @"\{[^}]+\}", "[^/]+") + "/?$";
        return Regex.IsMatch(path, pattern, RegexOptions.IgnoreCase | RegexOptions.CultureInvariant);
    }
}

/// <summary>The host's keys: per-function keys, host keys (any function) and the master key (anything, admin included).</summary>
public sealed record HostKeys(string MasterKey, IReadOnlyList<string> HostKeyValues, IReadOnlyDictionary<string, string> FunctionKeys)
{
    public bool Authorizes(string function, string level, string? key)
    {
        if (string.IsNullOrEmpty(key))
        {
            return false;
        }

        if (key == MasterKey)
        {
            return true;
        }

        return level == "function" && (HostKeyValues.Contains(key) || (FunctionKeys.TryGetValue(function, out var own) && own == key));
    }
}
