using System.Collections.Concurrent;

namespace BackupRelay.Copying;

/// <summary>
/// MD5 and SHA-256 states of copies paused between slices, kept in this process. A continuation
/// that lands here resumes hashing; one that lands elsewhere (another instance, a restart) hashes
/// the committed file instead. IncrementalHash state cannot be serialized into a message.
/// </summary>
public sealed class HashStateCache
{
    private const int MaxEntries = 512;
    private readonly ConcurrentDictionary<(string CopyId, long Offset), FileHashes> _states = new();

    public void Put(string copyId, long offset, FileHashes hashes)
    {
        if (_states.Count >= MaxEntries)
        {
            foreach (var key in _states.Keys.Take(MaxEntries / 4))
            {
                if (_states.TryRemove(key, out var old))
                {
                    old.Dispose();
                }
            }
        }

        _states[(copyId, offset)] = hashes;
    }

    /// <summary>Whether this process holds the hash state of <paramref name="copyId"/> paused at <paramref name="offset"/>.</summary>
    public bool Holds(string copyId, long offset) => _states.ContainsKey((copyId, offset));

    public FileHashes? TryTake(string copyId, long offset) => _states.TryRemove((copyId, offset), out var hashes) ? hashes : null;
}
