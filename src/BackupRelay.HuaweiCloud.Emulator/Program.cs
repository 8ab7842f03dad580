using BackupRelay.HuaweiCloud.Emulator;

// dotnet run --project src/BackupRelay.HuaweiCloud.Emulator -- --urls http://127.0.0.1:5080 --seed emulator-seed.json
var seedPath = args.SkipWhile(a => a != "--seed").Skip(1).FirstOrDefault()
    ?? Environment.GetEnvironmentVariable("EMULATOR_SEED");
var seed = seedPath is null ? DemoSeed.Create() : HuaweiCloudEmulator.LoadSeed(seedPath);
var app = HuaweiCloudEmulator.Build(seed, [.. args.Where((a, i) => a != "--seed" && (i == 0 || args[i - 1] != "--seed"))]);
await app.RunAsync();
