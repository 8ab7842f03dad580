namespace BackupRelay.Messaging;

/// <summary>The function names: the folder at the app root, the route <c>POST /{name}</c>, and this constant are one string.</summary>
public static class FunctionNames
{
    public const string ScheduleBackups = "ScheduleBackups";
    public const string ScheduleDrills = "ScheduleDrills";
    public const string StartBackup = "StartBackup";
    public const string PollBackupJob = "PollBackupJob";
    public const string CopyBackupFile = "CopyBackupFile";
    public const string PollOperation = "PollOperation";
    public const string Notify = "Notify";
    public const string UploadToObs = "UploadToObs";
}
