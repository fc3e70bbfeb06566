Console.Write(await Checks.RunAsync());
