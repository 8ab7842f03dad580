
namespace BackupRelay.Configuration;

/// <summary>The work queues (in <c>AzureWebJobsStorage</c>) and the run-record container.</summary>
public static class QueueNames
{
    public const string StartBackup = "backup-start";
    public const string PollBackupJob = "backup-poll";
    public const string CopyBackupFile = "backup-copy";
    public const string PollOperation = "operation-poll";
    public const string Notify = "notify";
    public const string UploadToObs = "restore-upload";
    public const string RunsContainer = "backuprelay-runs";

    public static string Poison(string queue) => queue + "-poison";
}
