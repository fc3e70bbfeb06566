var app = WebApplication.Create(args);
app.MapGet("/check", Checks.RunAsync);
app.Run();
