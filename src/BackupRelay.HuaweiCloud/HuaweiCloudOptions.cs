using System.ComponentModel.DataAnnotations;

namespace BackupRelay.HuaweiCloud;

/// <summary>Huawei Cloud account, endpoints and resilience settings (app settings <c>HuaweiCloud__*</c>).</summary>
public sealed class HuaweiCloudOptions
{
    public const string SectionName = "HuaweiCloud";

    /// <summary>Region, e.g. <c>cn-north-4</c>; also the IAM project name tokens are scoped to.</summary>
    [Required]
    [RegularExpression("^[a-z]{2}(-[a-z]+)+-[0-9]+$", ErrorMessage = "must be a region name such as cn-north-4")]
    public string Region { get; set; } = "";

    /// <summary>Project id: letters and digits, at most 64.</summary>
    [Required]
    [RegularExpression("^[A-Za-z0-9]{1,64}$", ErrorMessage = "must be 1-64 letters and digits")]
    public string ProjectId { get; set; } = "";

    /// <summary>Endpoint overrides; empty means the region's public endpoint.</summary>
    public HuaweiCloudEndpoints Endpoints { get; set; } = new();

    /// <summary>IAM password (<c>UserName</c>, <c>Password</c>, <c>DomainName</c>) or AK/SK (<c>AccessKey</c>, <c>SecretKey</c>).</summary>
    public HuaweiCloudAuthOptions Auth { get; set; } = new();

    public HuaweiCloudResilienceOptions Resilience { get; set; } = new();

    /// <summary>Enterprise project id sent to CSE as <c>X-Enterprise-Project-ID</c>; empty: not sent (service default "0").</summary>
    public string? EnterpriseProjectId { get; set; }

    public Uri IamEndpoint => Endpoints.Iam ?? ServiceEndpoint("iam", Region);
    public Uri GesEndpoint => Endpoints.Ges ?? ServiceEndpoint("ges", Region);
    public Uri CseEndpoint => Endpoints.Cse ?? ServiceEndpoint("cse", Region);

    /// <summary><c>https://{service}.{region}.myhuaweicloud.com</c>, or <c>.eu</c> for the European sovereign regions.</summary>
    public static Uri ServiceEndpoint(string service, string region) =>
        new($"https://{service}.{region}.myhuaweicloud.{(region.StartsWith("eu-west-1", StringComparison.Ordinal) ? "eu" : "com")}/");
}

public sealed class HuaweiCloudEndpoints
{
    public Uri? Iam { get; set; }
    public Uri? Ges { get; set; }
    public Uri? Cse { get; set; }
}

public enum HuaweiCloudAuthMode
{
    /// <summary>Chosen from the settings present: AK/SK when <c>AccessKey</c> is set, else password.</summary>
    Auto,
    Password,
    AkSk,
}

public sealed class HuaweiCloudAuthOptions
{
    public HuaweiCloudAuthMode Mode { get; set; } = HuaweiCloudAuthMode.Auto;
    public string? UserName { get; set; }
    public string? Password { get; set; }

    /// <summary>Account (domain) name the IAM user belongs to.</summary>
    public string? DomainName { get; set; }

    public string? AccessKey { get; set; }
    public string? SecretKey { get; set; }

    /// <summary>Temporary credentials' security token, sent as <c>X-Security-Token</c>.</summary>
    public string? SecurityToken { get; set; }

    /// <summary>How long before <c>expires_at</c> a cached IAM token is replaced.</summary>
    public TimeSpan TokenRefreshAhead { get; set; } = TimeSpan.FromMinutes(30);

    public HuaweiCloudAuthMode EffectiveMode => Mode != HuaweiCloudAuthMode.Auto ? Mode
        : string.IsNullOrEmpty(AccessKey) ? HuaweiCloudAuthMode.Password : HuaweiCloudAuthMode.AkSk;
}

public sealed class HuaweiCloudResilienceOptions
{
    /// <summary>Retries after the first attempt for transient errors and throttling.</summary>
    [Range(0, 10)]
    public int MaxRetryAttempts { get; set; } = 4;

    /// <summary>First backoff delay; doubles each retry, with jitter.</summary>
    public TimeSpan BaseDelay { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Longest wait between two attempts, Retry-After included.</summary>
    public TimeSpan MaxDelay { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Timeout of one attempt.</summary>
    public TimeSpan AttemptTimeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Timeout of a call, retries included.</summary>
    public TimeSpan TotalTimeout { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Client-side rate limit per endpoint and per instance, requests per second (a fan-out must not trip
    /// the gateway). Instances share the project's gateway budget: set it to that budget divided by the
    /// most instances that run at once.
    /// </summary>
    [Range(0.1, 1000)]
    public double RequestsPerSecond { get; set; } = 10;

    /// <summary>Failure ratio over <see cref="BreakSamplingDuration"/> that opens an endpoint's circuit.</summary>
    [Range(0.01, 1)]
    public double BreakFailureRatio { get; set; } = 0.5;

    [Range(2, 1000)]
    public int BreakMinimumThroughput { get; set; } = 10;

    public TimeSpan BreakSamplingDuration { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(30);
}
