using System.ComponentModel.DataAnnotations;
using System.Text.RegularExpressions;
using BackupRelay.HuaweiCloud;
using Microsoft.Extensions.Options;

namespace BackupRelay.Restores;

/// <summary>
/// Where restores from a copy write (app settings <c>Obs__*</c>): OBS through its S3-compatible API.
/// Unset credentials fall back to the Huawei Cloud AK/SK (<c>HuaweiCloud__Auth__AccessKey</c>), the
/// endpoint and signing region to the Huawei Cloud region's.
/// </summary>
public sealed partial class ObsOptions
{
    public const string SectionName = "Obs";

    /// <summary>OBS endpoint; empty: <c>https://obs.{HuaweiCloud__Region}.myhuaweicloud.com</c>.</summary>
    public Uri? Endpoint { get; set; }

    /// <summary>Region the requests are signed for; empty: <c>HuaweiCloud__Region</c>.</summary>
    public string? Region { get; set; }

    /// <summary>Default bucket restores upload into when a request names no <c>obsPath</c>.</summary>
    public string? Bucket { get; set; }

    /// <summary>Default key prefix in <see cref="Bucket"/>; each restore goes under <c>{prefix}{graph}/{backup}/</c>.</summary>
    public string Prefix { get; set; } = "backuprelay-restores/";

    public string? AccessKeyId { get; set; }
    public string? SecretAccessKey { get; set; }

    /// <summary>Part size of multipart uploads (OBS: 100 KB to 5 GB); grows for files that would need over 10,000 parts.</summary>
    [Range(100 * 1024, 1024 * 1024 * 1024)]
    public int PartSizeBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>Parts of one file uploaded at once, to start with (and a drill's ranged reads at once).</summary>
    [Range(1, 32)]
    public int MaxConcurrency { get; set; } = 4;

    /// <summary>
    /// The most parts of one file an upload grows to sending at once: each second it adds half as many again while the
    /// last step raised the bytes sent by a tenth and parts read from the copy were waiting for a send (more connections
    /// pay only where the link is the bound; how many parts are read at once is the buffer budget's). At or below
    /// <see cref="MaxConcurrency"/>: no growth.
    /// </summary>
    [Range(1, 64)]
    public int MaxUploadConnections { get; set; } = 16;

    /// <summary>How often an upload asks whether more connections pay (not a setting: tests shorten it).</summary>
    internal TimeSpan AdaptInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Retries of one OBS request by the S3 client (5xx, throttling, dropped connections) before the delivery is retried.</summary>
    [Range(0, 10)]
    public int MaxErrorRetry { get; set; } = 4;

    /// <summary>Timeout of one OBS request.</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>OBS's most parts per upload.</summary>
    public const int MaxParts = 10_000;

    /// <summary>Files up to this size go up in one PutObject; larger ones as multipart uploads.</summary>
    public long SinglePutMaxBytes => PartSizeBytes;

    public bool IsConfigured => !string.IsNullOrEmpty(AccessKeyId) && !string.IsNullOrEmpty(SecretAccessKey) && Endpoint is not null;

    /// <summary>Part size for a file of <paramref name="size"/> bytes: the configured size, or larger (whole MiB) to stay within <see cref="MaxParts"/>.</summary>
    public int PartSizeFor(long size)
    {
        const long mib = 1024 * 1024;
        var needed = (size + MaxParts - 1) / MaxParts;
        return needed <= PartSizeBytes ? PartSizeBytes : (int)Math.Min((needed + mib - 1) / mib * mib, int.MaxValue / mib * mib);
    }

    /// <summary>OBS bucket names: 3-63 of a-z, 0-9, '-', '.', starting and ending with a letter or digit.</summary>
    public static bool IsBucketName(string value) => BucketPattern().IsMatch(value);

    /// <summary>A key prefix: empty, or path segments of safe characters ending with '/'.</summary>
    public static bool IsPrefix(string value) => value.Length == 0 || (PrefixPattern().IsMatch(value) && !value.Contains("..", StringComparison.Ordinal));

    [GeneratedRegex(@"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\z")]
    private static partial Regex BucketPattern();

    [GeneratedRegex(@"^([A-Za-z0-9._~!$&'()*+,;=:@-]+/)+\z")]
    private static partial Regex PrefixPattern();
}

/// <summary>Fills what <c>Obs__*</c> leaves unset from the Huawei Cloud settings.</summary>
public sealed class ObsOptionsDefaults(IOptions<HuaweiCloudOptions> huawei) : IPostConfigureOptions<ObsOptions>
{
    public void PostConfigure(string? name, ObsOptions options)
    {
        var cloud = huawei.Value;
        if (options.Endpoint is { OriginalString.Length: 0 })
        {
            // An app setting present but empty (as infra writes it when unused) binds to an empty URI.
            options.Endpoint = null;
        }

        if (string.IsNullOrEmpty(options.AccessKeyId) && string.IsNullOrEmpty(options.SecretAccessKey))
        {
            options.AccessKeyId = cloud.Auth.AccessKey;
            options.SecretAccessKey = cloud.Auth.SecretKey;
        }

        if (string.IsNullOrEmpty(options.Region))
        {
            options.Region = cloud.Region;
        }

        if (options.Endpoint is null && !string.IsNullOrEmpty(cloud.Region))
        {
            options.Endpoint = HuaweiCloudOptions.ServiceEndpoint("obs", cloud.Region);
        }
    }
}

/// <summary>Bad <c>Obs__*</c> settings stop start-up, each message naming its setting.</summary>
public sealed class ObsOptionsValidator : IValidateOptions<ObsOptions>
{
    public ValidateOptionsResult Validate(string? name, ObsOptions options)
    {
        var errors = new List<string>();
        if (string.IsNullOrEmpty(options.AccessKeyId) != string.IsNullOrEmpty(options.SecretAccessKey))
        {
            errors.Add("Obs__AccessKeyId and Obs__SecretAccessKey must be set together (or both left empty to use HuaweiCloud__Auth__AccessKey/SecretKey).");
        }

        if (options.Endpoint is { OriginalString.Length: > 0 } endpoint && (!endpoint.IsAbsoluteUri || endpoint.Scheme is not ("https" or "http") || !string.IsNullOrEmpty(endpoint.Query)))
        {
            errors.Add("Obs__Endpoint must be an absolute http(s) URL without a query, e.g. https://obs.cn-north-4.myhuaweicloud.com.");
        }

        if (options.Bucket is { Length: > 0 } bucket && !ObsOptions.IsBucketName(bucket))
        {
            errors.Add("Obs__Bucket must be an OBS bucket name: 3-63 of a-z, 0-9, '-', '.'.");
        }

        if (!ObsOptions.IsPrefix(options.Prefix ?? ""))
        {
            errors.Add("Obs__Prefix must be empty or path segments ending with '/', e.g. backuprelay-restores/.");
        }

        // PartSizeBytes (OBS's smallest part is 100 KB), MaxConcurrency, MaxErrorRetry: their [Range] attributes.
        SettingAnnotations.Validate(options, ObsOptions.SectionName + "__", errors);

        if (options.RequestTimeout <= TimeSpan.Zero || options.RequestTimeout > TimeSpan.FromHours(1))
        {
            errors.Add("Obs__RequestTimeout must be positive and at most 01:00:00.");
        }

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }
}
