namespace BackupRelay.HuaweiCloud.Emulator;

/// <summary>
/// The emulator's start-up state: accounts, resources and behaviour settings. Read from the
/// JSON file given with <c>--seed</c>; every list may be empty.
/// </summary>
public sealed class EmulatorSeed
{
    public List<SeedProject> Projects { get; set; } = [];
    public List<SeedUser> Users { get; set; } = [];
    public List<SeedKeyPair> KeyPairs { get; set; } = [];
    public List<SeedGraph> Graphs { get; set; } = [];
    public List<SeedEngine> Engines { get; set; } = [];
    public EmulatorSettings Settings { get; set; } = new();
}

public sealed class SeedProject
{
    /// <summary>Project id: letters and digits, at most 64.</summary>
    public string Id { get; set; } = "";

    /// <summary>Project name, which on Huawei Cloud is the region name (e.g. <c>cn-north-4</c>).</summary>
    public string Name { get; set; } = "";
}

public sealed class SeedUser
{
    public string Name { get; set; } = "";
    public string Password { get; set; } = "";
    public string Domain { get; set; } = "";
}

public sealed class SeedKeyPair
{
    public string AccessKey { get; set; } = "";
    public string SecretKey { get; set; } = "";

    /// <summary>When set, requests must carry this <c>X-Security-Token</c> (temporary credentials).</summary>
    public string? SecurityToken { get; set; }
}

public sealed class SeedGraph
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public string ProjectId { get; set; } = "";

    /// <summary>Graph status code as text: 200 running, 900 stopped, ...</summary>
    public string Status { get; set; } = "200";

    /// <summary>GES version reported in backups (<c>data_store_version</c>).</summary>
    public string DataStoreVersion { get; set; } = "2.3.16";

    /// <summary>The graph's product type, as backups list it (<c>product_type</c>, seed page 002).</summary>
    public string ProductType { get; set; } = "InMemory";

    /// <summary>Sizes in bytes of the files each new backup of this graph has; null: the settings' default.</summary>
    public List<long>? BackupFileSizes { get; set; }

    /// <summary>Backups that already exist (listed, downloadable).</summary>
    public List<SeedBackup> Backups { get; set; } = [];
}

public sealed class SeedBackup
{
    public string Id { get; set; } = "";
    public string? Name { get; set; }
    public string BackupMethod { get; set; } = "auto";
    public DateTimeOffset? StartTime { get; set; }

    /// <summary>End of the backup; null: start + <see cref="DurationSeconds"/>.</summary>
    public DateTimeOffset? EndTime { get; set; }

    public long DurationSeconds { get; set; } = 30;
    public List<long>? FileSizes { get; set; }
}

public sealed class SeedEngine
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
    public string ProjectId { get; set; } = "";
    public List<SeedEngineBackup> Backups { get; set; } = [];

    /// <summary>Final status of restores of this engine: Success, RecoveringDataFailed or RestartingServiceFailed.</summary>
    public string RestoreOutcome { get; set; } = "Success";
}

public sealed class SeedEngineBackup
{
    public string Id { get; set; } = "";
    public string Name { get; set; } = "";
}

/// <summary>Behaviour knobs; all can be changed at run time through <c>PUT /_emulator/settings</c>.</summary>
public sealed class EmulatorSettings
{
    /// <summary>IAM token lifetime in seconds (Huawei Cloud: 24 h).</summary>
    public int TokenLifetimeSeconds { get; set; } = 24 * 3600;

    /// <summary>Validity of OBS download links in seconds (GES: 3600).</summary>
    public int LinkLifetimeSeconds { get; set; } = 3600;

    /// <summary>Seconds a job stays <c>pending</c>.</summary>
    public double JobPendingSeconds { get; set; } = 2;

    /// <summary>Seconds a job stays <c>running</c> before it ends.</summary>
    public double JobRunningSeconds { get; set; } = 5;

    /// <summary>Seconds each CSE restore phase (RecoveringData, RestartingService) lasts.</summary>
    public double RestorePhaseSeconds { get; set; } = 3;

    /// <summary>
    /// Whether add-backup answers with a <c>backup_id</c> beside the <c>job_id</c>: an opt-in variant (some
    /// regions add it); by default the answer has the shape seed page 001 documents, <c>job_id</c> only.
    /// </summary>
    public bool AddBackupReturnsBackupId { get; set; }

    /// <summary>
    /// GES requests per second each project may make, as Huawei's API gateway enforces it (a token
    /// bucket holding one second's worth); over it, 429 <c>APIG.0308</c> with <c>Retry-After</c>. 0: no limit.
    /// </summary>
    public double GesRequestsPerSecond { get; set; }

    /// <summary>
    /// A cross-cloud source on one machine: each OBS download connection is capped at this many bytes
    /// per second (as one TCP stream across regions is bounded by window / round trip). 0: no cap.
    /// </summary>
    public long ObsBytesPerSecondPerConnection { get; set; }

    /// <summary>Milliseconds before an OBS download answers (the round trips to the first byte). 0: none.</summary>
    public int ObsTimeToFirstByteMs { get; set; }

    /// <summary>
    /// The same long haul the other way: each OBS write (PutObject, UploadPart) reads its body at most this many bytes
    /// per second per connection. 0: no cap.
    /// </summary>
    public long ObsWriteBytesPerSecondPerConnection { get; set; }

    /// <summary>Milliseconds an OBS write waits before it answers once its body arrived (the round trips of the answer). 0: none.</summary>
    public int ObsWriteTimeToFirstByteMs { get; set; }

    /// <summary>File sizes in bytes of a new backup when its graph sets none.</summary>
    public List<long> DefaultBackupFileSizes { get; set; } = [3 * 1024 * 1024, 1024 * 1024 + 17];

    /// <summary>OBS bucket the backup files live in.</summary>
    public string Bucket { get; set; } = "ges-backup-bucket";

    /// <summary>Buckets that take writes through the S3 API (besides <see cref="Bucket"/>); others answer <c>NoSuchBucket</c>.</summary>
    public List<string> Buckets { get; set; } = ["ges-restore-bucket"];

    /// <summary>
    /// GES import checks that the import path really holds a backup: every file of one backup, by name,
    /// size and MD5. Off: any path imports (the job's outcome is then only what faults make it).
    /// </summary>
    public bool ImportChecksObjects { get; set; } = true;

    /// <summary>Public base URL for download links; null: the emulator's own address + <c>/obs</c>.</summary>
    public string? ObsBaseUrl { get; set; }

    /// <summary>Format of <c>link_expired_time</c>: <c>offset</c> (+0800), <c>utc</c> (no offset) or <c>doc</c> (the doc's malformed day).</summary>
    public string LinkExpiredTimeFormat { get; set; } = "offset";

    /// <summary>Format of job begin/end times: <c>T</c> (yyyy-MM-ddTHH:mm:ss) or <c>space</c> (yyyy-MM-dd HH:mm:ss).</summary>
    public string JobTimeFormat { get; set; } = "T";

    /// <summary>
    /// Files up to this size are served with their MD5 as ETag, as OBS does for objects uploaded in one
    /// PUT; larger ones as uploaded in parts of <see cref="MultipartPartSizeBytes"/>: the ETag is
    /// <c>"MD5(MD5(part 1) … MD5(part N))-N"</c> (OBS API, "Completing a Multipart Upload").
    /// </summary>
    public long SimpleUploadMaxBytes { get; set; } = 16 * 1024 * 1024;

    /// <summary>The part size large files were uploaded with (their multipart ETag depends on it).</summary>
    public long MultipartPartSizeBytes { get; set; } = 8 * 1024 * 1024;

    /// <summary>False: large files get an opaque <c>"…-N"</c> ETag that is not an MD5 of anything (a store whose ETag cannot be checked).</summary>
    public bool MultipartEtagsFromContent { get; set; } = true;

    /// <summary>
    /// Set (<c>kms</c>, <c>AES256</c>): backup files are served as OBS serves objects stored with server-side
    /// encryption: <c>x-obs-server-side-encryption</c> names it, and the ETag (32 hex digits) is not the MD5 of the bytes.
    /// </summary>
    public string? ServerSideEncryption { get; set; }

    /// <summary>Allowed skew of <c>X-Sdk-Date</c> in minutes.</summary>
    public int SignatureSkewMinutes { get; set; } = 15;

    /// <summary>Consecutive failed AK/SK authentications that lock an access key for five minutes.</summary>
    public int AccessKeyLockoutThreshold { get; set; } = 5;

    public EmulatorSettings Clone() => (EmulatorSettings)MemberwiseClone();
}
