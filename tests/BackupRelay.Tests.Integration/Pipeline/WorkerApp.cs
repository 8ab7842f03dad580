namespace BackupRelay.Tests.Integration.Pipeline;

/// <summary>
/// The published Functions app the worker tests run: <c>artifacts/functions</c>, written by
/// <c>build/test.sh</c> (<c>dotnet publish src/BackupRelay.Functions -c Release --no-build -o artifacts/functions</c>).
/// </summary>
public static class WorkerApp
{
    public static string Directory
    {
        get
        {
            var directory = Path.Combine(Azurite.RepositoryRoot(), "artifacts", "functions");
            if (!File.Exists(Path.Combine(directory, "functions.metadata")))
            {
                throw new InvalidOperationException($"{directory} holds no published Functions app: run build/test.sh, or "
                    + "dotnet publish src/BackupRelay.Functions -c Release -o artifacts/functions");
            }

            return directory;
        }
    }
}
