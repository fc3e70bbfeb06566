using System.Reflection;

// The child host. It runs with the parent application's runtimeconfig and deps files, so the
// library and the user's assemblies resolve exactly as they do in the parent; it only hands over
// to the library, which it finds by name rather than by reference (the library references us).
var library = Assembly.Load("Multiprocessing");
var entry = library.GetType("Multiprocessing.WorkerHost", throwOnError: true)!
    .GetMethod("Run", BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public)!;
return (int)entry.Invoke(null, [args])!;
