using BackupRelay.Copying;
using BackupRelay.HuaweiCloud.Emulator;

namespace BackupRelay.Tests.Integration.Copying;

public sealed class FileCopierTests : CopyHarness
{
    public static TheoryData<DestinationKind, long> Sizes()
    {
        var data = new TheoryData<DestinationKind, long>();
        foreach (var kind in new[] { DestinationKind.Blob, DestinationKind.Local })
        {
            foreach (var size in new long[] { 0, 1, Block - 1, Block, Block + 1, (Block * 10) + 123 })
            {
                data.Add(kind, size);
            }
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public async Task Copies_are_byte_exact_around_block_boundaries(DestinationKind kind, long size)
    {
        var file = await BackupFileAsync(size);
        var destination = await DestinationAsync(kind);
        var result = await Copier().CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal((int)((size + Block - 1) / Block), result.Statistics.BlocksUploaded);
        Assert.False(result.Statistics.HashesRecomputed);
    }

    [Theory]
    [InlineData(DestinationKind.Blob)]
    [InlineData(DestinationKind.Local)]
    public async Task Slices_continue_in_the_same_process_with_the_hash_state_kept(DestinationKind kind)
    {
        var file = await BackupFileAsync((Block * 7) + 5);
        var destination = await DestinationAsync(kind);
        var hashes = new HashStateCache();
        var copier = Copier(o => o.SliceMaxBytes = Block * 3, hashes: hashes);
        var first = await copier.CopyAsync(destination, Request(file));
        Assert.Equal(CopyOutcome.Continue, first.Outcome);
        Assert.Equal(Block * 3, first.Continuation!.Offset);
        Assert.Null(await destination.GetCommittedAsync(PathOf(file)));

        var second = await copier.CopyAsync(destination, Request(file, first.Continuation));
        Assert.Equal(CopyOutcome.Continue, second.Outcome);
        var last = await copier.CopyAsync(destination, Request(file, second.Continuation));
        await AssertCopiedAsync(destination, file, last);
        Assert.False(last.Statistics.HashesRecomputed);
    }

    [Theory]
    [InlineData(DestinationKind.Blob)]
    [InlineData(DestinationKind.Local)]
    public async Task Resume_after_a_kill_uploads_only_what_is_missing(DestinationKind kind)
    {
        var file = await BackupFileAsync((Block * 9) + 17);
        var destination = await DestinationAsync(kind);
        var partial = await Copier(o => o.SliceMaxBytes = Block * 4).CopyAsync(destination, Request(file));
        Assert.Equal(CopyOutcome.Continue, partial.Outcome);
        Assert.Equal(4, partial.Statistics.BlocksUploaded);

        // A new process, and the continuation lost: only the staged blocks tell where to go on.
        State.ClearRequests();
        var resumed = await Copier().CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, resumed);
        Assert.Equal(6, resumed.Statistics.BlocksUploaded);

        // A block blob's staged blocks cannot be read before the commit: its hashes are made from the committed
        // file. A local directory's partial file can be: the staged blocks are read back and hashed before it.
        Assert.Equal(kind == DestinationKind.Blob, resumed.Statistics.HashesRecomputed);
        Assert.Equal(file.Size - (Block * 4), resumed.Statistics.BytesFromSource);
    }

    [Theory]
    [InlineData(DestinationKind.Blob)]
    [InlineData(DestinationKind.Local)]
    public async Task A_continuation_redelivered_after_every_block_was_staged_commits_without_reading_past_the_end(DestinationKind kind)
    {
        // The last block is short: resuming at "the block after the last" must mean the end of the file.
        var file = await BackupFileAsync((Block * 3) + 17);
        var destination = await DestinationAsync(kind);
        var first = await Copier(o => o.SliceMaxBytes = Block * 3).CopyAsync(destination, Request(file));
        Assert.Equal(CopyOutcome.Continue, first.Outcome);
        Assert.Equal(Block * 3, first.Continuation!.Offset);

        // The next slice staged the last block, then its process died before the commit.
        await destination.StageBlockAsync(PathOf(file), BlockIds.For(Block, Block * 3), Block * 3, Expected(file).AsMemory(Block * 3), null);
        State.ClearRequests();
        var resumed = await Copier().CopyAsync(destination, Request(file, first.Continuation));
        await AssertCopiedAsync(destination, file, resumed);
        Assert.Equal(0, resumed.Statistics.BlocksUploaded);
        Assert.Equal(0, resumed.Statistics.BytesFromSource);
    }

    [Fact]
    public async Task A_file_whose_source_declares_its_md5_is_verified_against_it()
    {
        var file = await BackupFileAsync((Block * 2) + 3);
        var destination = await DestinationAsync(DestinationKind.Blob);
        var result = await Copier().CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(Verification.SourceMd5, result.Verification);
        Assert.Equal(Verification.SourceMd5, (await destination.GetCommittedAsync(PathOf(file)))!.Verification);
    }

    [Fact]
    public async Task A_file_over_16_MiB_is_verified_against_its_multipart_etag()
    {
        // Over 16 MiB the source's ETag is multipart (8 MiB parts here): MD5 of the parts' MD5s, "-3".
        var file = await BackupFileAsync((17L << 20) + 9);
        var destination = await DestinationAsync(DestinationKind.Blob);
        var result = await Copier(o => o.BlockSizeBytes = 1 << 20).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(Verification.SourceMultipartMd5, result.Verification);
        Assert.Equal(Verification.SourceMultipartMd5, (await destination.GetCommittedAsync(PathOf(file)))!.Verification);
    }

    [Fact]
    public async Task Asked_for_always_a_file_its_multipart_etag_proves_also_gets_its_whole_file_md5()
    {
        var file = await BackupFileAsync((17L << 20) + 9);
        var destination = await DestinationAsync(DestinationKind.Blob);
        WholeFileMd5Always = true;
        var result = await Copier(o => (o.BlockSizeBytes, o.WholeFileMd5) = (1 << 20, WholeFileMd5.Always)).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(Verification.SourceMultipartMd5, result.Verification);
        Assert.NotNull(result.Md5Hex);
    }

    [Fact]
    public async Task A_file_over_16_MiB_corrupted_in_transit_is_caught_against_its_multipart_etag_and_a_fresh_copy_verifies()
    {
        var file = await BackupFileAsync((17L << 20) + 9);
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "corrupt", Offset = 1000, Count = 1 });
        var destination = await DestinationAsync(DestinationKind.Blob);
        var copier = Copier(o => o.BlockSizeBytes = 1 << 20);

        var first = await copier.CopyAsync(destination, Request(file));
        Assert.Equal(CopyOutcome.Failed, first.Outcome);
        Assert.True(first.ContentMismatch);
        Assert.Contains("Multipart ETag mismatch", first.FailureReason, StringComparison.Ordinal);
        Assert.Null(await destination.GetCommittedAsync(PathOf(file)));

        var again = await copier.CopyAsync(destination, Request(file) with { Generation = 1 });
        await AssertCopiedAsync(destination, file, again);
        Assert.Equal(Verification.SourceMultipartMd5, again.Verification);
    }

    [Fact]
    public async Task A_large_file_copied_in_slices_by_separate_processes_is_still_checked_against_its_multipart_etag()
    {
        // Each slice in a new copier (no hash state kept): the committed file is hashed back, parts and all.
        var file = await BackupFileAsync((17L << 20) + 9);
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "corrupt", Offset = 1000, Count = 1 });
        var destination = await DestinationAsync(DestinationKind.Blob);
        CopyResult result = await Copier(o => { o.BlockSizeBytes = 1 << 20; o.SliceMaxBytes = 6L << 20; }).CopyAsync(destination, Request(file));
        while (result.Outcome == CopyOutcome.Continue)
        {
            result = await Copier(o => { o.BlockSizeBytes = 1 << 20; o.SliceMaxBytes = 6L << 20; }).CopyAsync(destination, Request(file, result.Continuation));
        }

        Assert.Equal(CopyOutcome.Failed, result.Outcome);
        Assert.Contains("Multipart ETag mismatch", result.FailureReason, StringComparison.Ordinal);

        // Copied again (a new generation), the same way: verified against the ETag from the bytes hashed back.
        var request = Request(file) with { Generation = 1 };
        result = await Copier(o => { o.BlockSizeBytes = 1 << 20; o.SliceMaxBytes = 6L << 20; }).CopyAsync(destination, request);
        while (result.Outcome == CopyOutcome.Continue)
        {
            result = await Copier(o => { o.BlockSizeBytes = 1 << 20; o.SliceMaxBytes = 6L << 20; }).CopyAsync(destination, request with { Continuation = result.Continuation });
        }

        await AssertCopiedAsync(destination, file, result);
        Assert.True(result.Statistics.HashesRecomputed);
        Assert.Equal(Verification.SourceMultipartMd5, result.Verification);
    }

    [Fact]
    public async Task A_large_file_whose_etag_is_not_derived_from_its_bytes_is_recorded_as_received_only()
    {
        // A store whose multipart ETag cannot be checked: without a second read the copy cannot tell, and says so.
        State.Settings.MultipartEtagsFromContent = false;
        var file = await BackupFileAsync((17L << 20) + 9);
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "corrupt", Offset = 1000, Count = 1 });
        var destination = await DestinationAsync(DestinationKind.Blob);
        var result = await Copier(o => o.BlockSizeBytes = 1 << 20).CopyAsync(destination, Request(file));
        Assert.Equal(CopyOutcome.Completed, result.Outcome);
        Assert.Equal(Verification.ReceivedOnly, result.Verification);
        Assert.Equal(Verification.ReceivedOnly, (await destination.GetCommittedAsync(PathOf(file)))!.Verification);
        Assert.NotEqual(Expected(file), await ReadAllAsync(destination, PathOf(file)));
    }

    [Fact]
    public async Task With_a_second_read_a_corruption_in_transit_is_caught_and_a_fresh_copy_verifies()
    {
        State.Settings.MultipartEtagsFromContent = false;
        var file = await BackupFileAsync((17L << 20) + 9);
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "corrupt", Offset = 1000, Count = 1 });
        var destination = await DestinationAsync(DestinationKind.Blob);
        var copier = Copier(o => { o.BlockSizeBytes = 1 << 20; o.VerifyBySecondRead = true; });

        var first = await copier.CopyAsync(destination, Request(file));
        Assert.Equal(CopyOutcome.Failed, first.Outcome);
        Assert.True(first.ContentMismatch);
        Assert.Contains("second read", first.FailureReason, StringComparison.Ordinal);
        Assert.Null(await destination.GetCommittedAsync(PathOf(file)));

        // Copied again from scratch (a new block generation: nothing of the corrupted pass is reused).
        var again = await copier.CopyAsync(destination, Request(file) with { Generation = 1 });
        await AssertCopiedAsync(destination, file, again);
        Assert.Equal(Verification.SecondRead, again.Verification);
        Assert.Equal(18, again.Statistics.BlocksUploaded);
    }

    [Fact]
    public async Task A_cancelled_copy_resumes_from_its_staged_blocks()
    {
        var file = await BackupFileAsync(Block * 40);
        var destination = await DestinationAsync(DestinationKind.Blob);
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "latency", DelayMs = 0 });
        var staged = await CancelOnceStagedAsync(Copier(o => o.MaxConcurrency = 1), destination, file, 5);
        var resumed = await Copier().CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, resumed);

        // Only the missing blocks are uploaded; one more may have landed after the count (the service
        // can finish a Put Block the cancelled client stopped waiting for).
        Assert.InRange(resumed.Statistics.BlocksUploaded, 40 - staged - 1, 40 - staged);
    }

    [Theory]
    [InlineData(DestinationKind.Blob)]
    [InlineData(DestinationKind.Local)]
    public async Task Expired_link_and_dropped_connection_mid_stream_are_survived_without_starting_over(DestinationKind kind)
    {
        var file = await BackupFileAsync(Block * 12);
        var destination = await DestinationAsync(kind);
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "drop", AfterBytes = (Block * 5) + 100 });
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "expireLink", Count = 2 });
        // One stream here (the drop lands mid-stream); the parallel ranges have their own tests below.
        var result = await Copier(o => (o.MaxConcurrency, o.DownloadConnections) = (2, 1)).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.True(Refreshes >= 1);
        Assert.True(result.Statistics.SourceRestarts >= 2);
        Assert.Equal(12, result.Statistics.BlocksUploaded);

        // Resumed from the last whole block, not from zero: at most one block is read twice.
        Assert.True(result.Statistics.BytesFromSource <= file.Size, $"read {result.Statistics.BytesFromSource} of {file.Size}");
        Assert.DoesNotContain("Signature=", Logs.All(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Too_many_source_failures_fail_the_copy_with_a_reason()
    {
        var file = await BackupFileAsync(Block * 3);
        var destination = await DestinationAsync(DestinationKind.Local);
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "status", Status = 503, Count = 0 });
        var result = await Copier(o => o.MaxSourceAttempts = 3).CopyAsync(destination, Request(file));
        Assert.Equal(CopyOutcome.Failed, result.Outcome);
        Assert.Contains("503", result.FailureReason, StringComparison.Ordinal);
        Assert.DoesNotContain("Signature", result.FailureReason, StringComparison.Ordinal);
        Assert.Null(await destination.GetCommittedAsync(PathOf(file)));
    }

    [Theory]
    [InlineData(DestinationKind.Blob)]
    [InlineData(DestinationKind.Local)]
    public async Task A_source_that_ignores_range_is_caught_not_appended(DestinationKind kind)
    {
        var file = await BackupFileAsync(Block * 6);
        var destination = await DestinationAsync(kind);
        var first = await Copier(o => o.SliceMaxBytes = Block * 2).CopyAsync(destination, Request(file));
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "ignoreRange", Count = 0 });
        var result = await Copier().CopyAsync(destination, Request(file, first.Continuation));
        Assert.Equal(CopyOutcome.Failed, result.Outcome);
        Assert.Contains("ignored the Range", result.FailureReason, StringComparison.Ordinal);
        Assert.Null(await destination.GetCommittedAsync(PathOf(file)));
        Assert.Equal(2, (await destination.GetStagedBlocksAsync(PathOf(file))).Count);
    }

    [Theory]
    [InlineData(DestinationKind.Blob)]
    [InlineData(DestinationKind.Local)]
    public async Task A_corrupted_byte_is_caught_and_nothing_looks_complete(DestinationKind kind)
    {
        var file = await BackupFileAsync((Block * 5) + 3);
        var destination = await DestinationAsync(kind);
        // Every read of that byte is damaged (a count of 1 would be spent on the first range, which does not hold it).
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "corrupt", Offset = (Block * 2) + 7, Count = 0 });
        var result = await Copier().CopyAsync(destination, Request(file));
        Assert.Equal(CopyOutcome.Failed, result.Outcome);
        Assert.Contains("MD5 mismatch", result.FailureReason, StringComparison.Ordinal);
        var committed = await destination.GetCommittedAsync(PathOf(file));
        Assert.True(committed is null || !committed.Verified);
    }

    [Fact]
    public async Task A_corrupted_byte_found_when_hashing_the_committed_file_deletes_it()
    {
        var file = await BackupFileAsync((Block * 5) + 3);
        var destination = await DestinationAsync(DestinationKind.Blob);
        var first = await Copier(o => o.SliceMaxBytes = Block * 2).CopyAsync(destination, Request(file));
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "corrupt", Offset = (Block * 4) + 1, Count = 0 });
        var result = await Copier().CopyAsync(destination, Request(file, first.Continuation));
        Assert.Equal(CopyOutcome.Failed, result.Outcome);
        Assert.True(result.Statistics.HashesRecomputed);
        Assert.Null(await destination.GetCommittedAsync(PathOf(file)));
    }

    [Theory]
    [InlineData(DestinationKind.Blob)]
    [InlineData(DestinationKind.Local)]
    public async Task Concurrent_duplicate_deliveries_end_with_one_correct_file(DestinationKind kind)
    {
        var file = await BackupFileAsync((Block * 16) + 9);
        var destination = await DestinationAsync(kind);
        var budget = new CopyBufferBudget(8L << 20);
        var results = await Task.WhenAll(
            Copier(budget: budget).CopyAsync(destination, Request(file)),
            Copier(budget: budget).CopyAsync(destination, Request(file)),
            Copier(budget: budget).CopyAsync(destination, Request(file)));
        Assert.All(results, r => Assert.Equal(CopyOutcome.Completed, r.Outcome));
        Assert.Single(results.Select(r => r.Sha256Hex).Distinct());
        await AssertCopiedAsync(destination, file, results[0]);
    }

    [Fact]
    public async Task A_finished_copy_delivered_again_does_nothing()
    {
        var file = await BackupFileAsync(Block + 5);
        var destination = await DestinationAsync(DestinationKind.Blob);
        await Copier().CopyAsync(destination, Request(file));
        State.ClearRequests();
        var again = await Copier().CopyAsync(destination, Request(file));
        Assert.True(again.Statistics.AlreadyComplete);
        await AssertCopiedAsync(destination, file, again);
        Assert.Empty(State.RecordedRequests());
    }

    [Fact]
    public async Task Many_copies_share_one_memory_budget()
    {
        var budget = new CopyBufferBudget(Block * 6L);
        var files = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => BackupFileAsync(Block * 8)));
        var destination = await DestinationAsync(DestinationKind.Local);
        var results = await Task.WhenAll(files.Select(f => Copier(o => o.MaxConcurrency = 4, budget: budget).CopyAsync(destination, Request(f))));
        Assert.All(results, r => Assert.Equal(CopyOutcome.Completed, r.Outcome));
        Assert.True(budget.PeakInUseBytes <= budget.CapacityBytes);
        Assert.True(budget.PeakInUseBytes >= Block * 2L, "copies should have run concurrently");
        Assert.Equal(0, budget.InUseBytes);
    }

    [Theory]
    [InlineData(DestinationKind.Local)]
    [InlineData(DestinationKind.Blob)]
    public async Task Many_long_range_copies_started_at_once_on_a_small_budget_take_turns_instead_of_blocking_each_other(DestinationKind kind)
    {
        // Each copy wants 5 blocks (one to hash, a chunk for each of 4 connections); together they want 60 of 8. A copy
        // that held part of its memory while waiting for the rest could leave every copy waiting on the others.
        var budget = new CopyBufferBudget(Block * 8L);
        var files = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => BackupFileAsync(Block * 12)));
        var destination = await DestinationAsync(kind);
        var copier = Copier(o => o.DownloadConnections = 4, budget: budget);
        var results = await Task.WhenAll(files.Select(f => copier.CopyAsync(destination, Request(f)))).WaitAsync(TimeSpan.FromSeconds(90));
        for (var i = 0; i < files.Length; i++)
        {
            await AssertCopiedAsync(destination, files[i], results[i]);
        }

        Assert.True(budget.PeakInUseBytes <= budget.CapacityBytes, $"peak {budget.PeakInUseBytes}");
        Assert.Equal(0, budget.InUseBytes);
    }

    [Fact]
    public async Task Server_side_mode_copies_from_a_source_the_service_can_reach_and_verifies()
    {
        var source = Storage.GetContainer("src-" + Guid.NewGuid().ToString("N")[..20]);
        await source.CreateIfNotExistsAsync(Azure.Storage.Blobs.Models.PublicAccessType.Blob);
        var bytes = new byte[(Block * 3) + 11];
        Random.Shared.NextBytes(bytes);
        await source.GetBlobClient("file.bin").UploadAsync(BinaryData.FromBytes(bytes));
        var destination = await DestinationAsync(DestinationKind.Blob);
        var link = source.GetBlobClient("file.bin").Uri;
        var request = new CopyRequest("server-side", "copied/file.bin", link, _ => Task.FromResult(link));
        var result = await Copier(o => o.Mode = CopyMode.ServerSide).CopyAsync(destination, request);
        Assert.Equal(CopyOutcome.Completed, result.Outcome);
        Assert.True(result.Statistics.HashesRecomputed);
        Assert.Equal(4, result.Statistics.BlocksUploaded);
        Assert.Equal(bytes, await ReadAllAsync(destination, "copied/file.bin"));
        Assert.Equal(Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes)), result.Sha256Hex);
        Assert.True((await destination.GetCommittedAsync("copied/file.bin"))!.Verified);
    }

    /// <summary>GETs of the file the emulator saw (it records a request once its answer is written: give the last one a moment).</summary>
    private async Task<int> ObsGetsAsync(SourceFile file)
    {
        await Task.Delay(300);
        return State.RecordedRequests().Count(r => r.Method == "GET" && r.Path.EndsWith("/" + file.Name, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData(1, Block * 3)]
    [InlineData(3, (Block * 7) + 1)]
    [InlineData(8, (Block * 9) - 1)]
    [InlineData(32, Block * 2)]
    public async Task Long_ranges_into_a_block_store_through_the_spool_are_byte_exact_and_one_connection_is_one_request(int connections, long size)
    {
        var file = await BackupFileAsync(size);
        var destination = await DestinationAsync(DestinationKind.Blob);
        var result = await Copier(o => o.DownloadConnections = connections).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(file.Size, result.Statistics.BytesFromSource);
        var blocks = (int)((size + Block - 1) / Block);
        var gets = await ObsGetsAsync(file);
        if (connections == 1)
        {
            Assert.Equal(1, gets);
        }
        else
        {
            Assert.InRange(gets, 1, blocks + 1);
        }
    }

    [Theory]
    [InlineData(2, (Block * 9) - 1)]
    [InlineData(8, (Block * 40) + 5)]
    [InlineData(32, Block * 2)]
    [InlineData(4, Block * 200)]
    public async Task Long_ranges_into_a_local_directory_are_byte_exact_with_fewer_requests_than_blocks(int connections, long size)
    {
        var file = await BackupFileAsync(size);
        var destination = await DestinationAsync(DestinationKind.Local);
        var result = await Copier(o => o.DownloadConnections = connections).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(file.Size, result.Statistics.BytesFromSource);
        var blocks = (int)((size + Block - 1) / Block);
        Assert.Equal(blocks, result.Statistics.BlocksUploaded);

        // Each connection asks for a segment of several blocks (the probe asks for one): fewer requests than blocks.
        var gets = await ObsGetsAsync(file);
        Assert.True(blocks <= 2 ? gets <= blocks : gets < blocks, $"{gets} requests for {blocks} blocks");
        Assert.False(File.Exists(((LocalDirectoryCopyDestination)destination).FullPath(PathOf(file)) + ".partial"));
    }

    [Theory]
    [InlineData(4, (Block * 40) + 5)]
    [InlineData(16, Block * 3)]
    public async Task Long_ranges_into_a_block_store_go_through_a_spool_that_is_gone_after_the_copy(int connections, long size)
    {
        var file = await BackupFileAsync(size);
        var destination = await DestinationAsync(DestinationKind.Blob);
        var spool = Directory.CreateTempSubdirectory("backuprelay-spool-").FullName;
        try
        {
            var result = await Copier(o => (o.DownloadConnections, o.SpoolDirectory) = (connections, spool)).CopyAsync(destination, Request(file));
            await AssertCopiedAsync(destination, file, result);
            var blocks = (int)((size + Block - 1) / Block);
            Assert.Equal(blocks, result.Statistics.BlocksUploaded);
            Assert.False(result.Statistics.HashesRecomputed);
            var gets = await ObsGetsAsync(file);
            Assert.True(blocks <= 3 ? gets <= blocks : gets < blocks, $"{gets} requests for {blocks} blocks");
            Assert.Empty(Directory.EnumerateFileSystemEntries(spool));
        }
        finally
        {
            Directory.Delete(spool, true);
        }
    }

    [Fact]
    public async Task A_range_dropped_mid_segment_is_asked_again_from_its_block_and_the_copy_is_byte_exact()
    {
        var file = await BackupFileAsync(Block * 30);
        var destination = await DestinationAsync(DestinationKind.Local);

        // Two answers break after a block and a half: the blocks before the break stay; the broken one is asked for again.
        State.Faults.Add(new FaultSpec { Method = "GET", Path = "/obs/*", Kind = "drop", AfterBytes = Block + (Block / 2), Count = 2 });
        var result = await Copier(o => o.DownloadConnections = 4).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(2, result.Statistics.SourceRestarts);
        Assert.Equal(file.Size, result.Statistics.BytesFromSource);
        Assert.Equal(30, result.Statistics.BlocksUploaded);
    }

    [Theory]
    [InlineData(DestinationKind.Local)]
    [InlineData(DestinationKind.Blob)]
    public async Task A_slow_range_holds_one_chunk_per_connection_whatever_arrives_behind_it(DestinationKind kind)
    {
        var budget = new CopyBufferBudget(Block * 64L);
        var file = await BackupFileAsync(Block * 80);
        var destination = await DestinationAsync(kind);

        // The probe and the first segment answer 1.5 s late; the other connections' bytes land on disk meanwhile, not in memory.
        State.Faults.Add(new FaultSpec { Method = "GET", Path = "/obs/*", Kind = "latency", DelayMs = 1500, Count = 2 });
        var result = await Copier(o => o.DownloadConnections = 8, budget).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);

        // Memory: one chunk per connection (a chunk is at most a block) and the hash ring's chunks.
        Assert.True(budget.PeakInUseBytes <= (8 + SegmentedDownload.HashRing) * (long)Block, $"peak {budget.PeakInUseBytes}");
        Assert.Equal(0, budget.InUseBytes);
    }

    [Fact]
    public async Task A_kill_during_long_ranges_into_a_local_directory_resumes_reading_its_staged_blocks_back()
    {
        var file = await BackupFileAsync(Block * 60);
        var destination = await DestinationAsync(DestinationKind.Local);
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "latency", DelayMs = 0 });
        var staged = await CancelOnceStagedAsync(Copier(o => o.DownloadConnections = 6), destination, file, 10);

        // A new process: no hash state, no continuation; the staged blocks are hashed from the partial file, not downloaded.
        var resumed = await Copier(o => o.DownloadConnections = 6).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, resumed);
        Assert.False(resumed.Statistics.HashesRecomputed);
        Assert.Equal(60 - staged, resumed.Statistics.BlocksUploaded);
        Assert.Equal(staged, resumed.Statistics.BlocksSkipped);
        Assert.Equal(file.Size - (staged * (long)Block), resumed.Statistics.BytesFromSource);
    }

    [Fact]
    public async Task A_small_file_is_one_request()
    {
        var file = await BackupFileAsync(Block - 3);
        var destination = await DestinationAsync(DestinationKind.Local);
        await AssertCopiedAsync(destination, file, await Copier(o => o.DownloadConnections = 8).CopyAsync(destination, Request(file)));
        Assert.Equal(1, await ObsGetsAsync(file));
    }

    [Fact]
    public async Task One_stream_that_drops_mid_way_into_a_block_store_resumes_from_its_block()
    {
        var file = await BackupFileAsync(Block * 10);
        var destination = await DestinationAsync(DestinationKind.Blob);
        State.Faults.Add(new FaultSpec { Method = "GET", Path = "/obs/*", Kind = "drop", AfterBytes = (Block * 3) + 1000, Count = 2 });
        var result = await Copier(o => o.DownloadConnections = 1).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(2, result.Statistics.SourceRestarts);
        Assert.Equal(1 + 2, await ObsGetsAsync(file));
        Assert.Equal(file.Size, result.Statistics.BytesFromSource);
        Assert.Equal(10, result.Statistics.BlocksUploaded);
    }

    [Fact]
    public async Task A_link_expiring_during_a_parallel_download_is_refreshed_once_and_every_range_switches()
    {
        var file = await BackupFileAsync(Block * 24);
        var destination = await DestinationAsync(DestinationKind.Blob);

        // After a few ranges were asked for, the hour passes: every range still on the old link is refused.
        var clock = new AfterRequests(4, () => State.Clock.Advance(TimeSpan.FromHours(2)));
        var result = await Copier(o => o.DownloadConnections = 6, handler: clock).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(1, Refreshes);
        Assert.True(result.Statistics.SourceRestarts >= 1);
        Assert.Contains(State.RecordedRequests(), r => r.Path.EndsWith("/" + file.Name, StringComparison.Ordinal) && r.Status == 403);
        Assert.DoesNotContain("Signature=", Logs.All(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(DestinationKind.Blob)]
    [InlineData(DestinationKind.Local)]
    public async Task A_source_that_ignores_range_from_the_start_is_read_over_one_stream(DestinationKind kind)
    {
        var file = await BackupFileAsync((Block * 6) + 5);
        var destination = await DestinationAsync(kind);
        State.Faults.Add(new FaultSpec { Path = "/obs/*", Kind = "ignoreRange", Count = 0 });
        var result = await Copier(o => o.DownloadConnections = 8).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, result);
        Assert.Equal(1, await ObsGetsAsync(file));
    }

    [Fact]
    public async Task Resume_after_a_kill_during_parallel_ranges_uploads_only_the_missing_blocks()
    {
        var file = await BackupFileAsync(Block * 30);
        var destination = await DestinationAsync(DestinationKind.Blob);
        var staged = await CancelOnceStagedAsync(Copier(o => o.DownloadConnections = 4), destination, file, 8);
        var resumed = await Copier(o => o.DownloadConnections = 4).CopyAsync(destination, Request(file));
        await AssertCopiedAsync(destination, file, resumed);
        Assert.InRange(resumed.Statistics.BlocksUploaded, 30 - staged - 4, 30 - staged);
    }

    /// <summary>
    /// Starts a copy and cancels it (a kill, as the copier sees one) once at least <paramref name="blocks"/> blocks are
    /// staged; returns how many were staged when it had ended.
    /// </summary>
    private async Task<int> CancelOnceStagedAsync(FileCopier copier, ICopyDestination destination, SourceFile file, int blocks)
    {
        using var kill = new CancellationTokenSource();
        var copy = copier.CopyAsync(destination, Request(file), kill.Token);
        while ((await destination.GetStagedBlocksAsync(PathOf(file))).Count < blocks)
        {
            await Task.Delay(2);
        }

        await kill.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => copy);
        return (await destination.GetStagedBlocksAsync(PathOf(file))).Count;
    }

    /// <summary>Runs an action once, when the n-th request goes out.</summary>
    private sealed class AfterRequests(int n, Action action) : DelegatingHandler
    {
        private int _count;

        protected override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            if (Interlocked.Increment(ref _count) == n)
            {
                action();
            }

            return base.SendAsync(request, cancellationToken);
        }
    }
}
