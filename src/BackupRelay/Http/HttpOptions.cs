namespace BackupRelay.Http;

/// <summary>HTTP API security (app settings <c>Http__*</c>).</summary>
public sealed class HttpOptions
{
    public const string SectionName = "Http";

    /// <summary>When set, restore and import requests must carry a valid <c>X-BackupRelay-Signature</c>.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>Also accept the legacy body-only <c>v1</c> signature (it does not cover the method, path or query).</summary>
    public bool AcceptLegacySignatures { get; set; }

    /// <summary>How old a signed request may be (replay window).</summary>
    public TimeSpan SignatureTolerance { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>Largest request body accepted.</summary>
    public int MaxBodyBytes { get; set; } = 64 * 1024;

    /// <summary>
    /// The longest any API route (health has its own, shorter bound) waits for storage and Huawei Cloud: past it the
    /// request answers 503 with <c>Retry-After</c>. Work it started is idempotent, so asking again is safe.
    /// </summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one probe of storage and Huawei Cloud answers every <c>GET /api/health</c> (anyone may call it).</summary>
    public TimeSpan HealthCacheDuration { get; set; } = TimeSpan.FromSeconds(15);
}
