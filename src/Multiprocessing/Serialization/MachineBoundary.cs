namespace Multiprocessing;

/// <summary>
/// Set while a value is written for another machine (a cluster's node): the library's objects that live on this
/// machine (shared memory, process queues and pipes, shared-memory locks, managers reached over a Unix socket) then
/// refuse to travel, naming what they are, instead of arriving as handles that attach to nothing there.
/// </summary>
internal static class MachineBoundary
{
    [ThreadStatic] private static string? _crossing;

    /// <summary>Writes on this thread go to <paramref name="where"/> (e.g. "a cluster node") until the scope ends.</summary>
    public static Scope Crossing(string where)
    {
        var previous = _crossing;
        _crossing = where;
        return new Scope(previous);
    }

    /// <summary>Throws when a <paramref name="type"/> that lives on this machine is being written for another one.</summary>
    public static void Check(Type type, string? what = null)
    {
        if (_crossing is { } where)
            throw new SerializationException(
                $"A {TravelErrors.Friendly(type)} {what ?? "lives on this machine"}, and this value goes to {where}, on another machine. " +
                "Send the data instead, or share it through a manager served over TCP (Manager.Serve with an endpoint and an auth key), whose proxies travel between machines.");
    }

    public readonly struct Scope(string? previous) : IDisposable
    {
        public void Dispose() => _crossing = previous;
    }
}
