namespace Multiprocessing;

/// <summary>Forgets this process as a producer of every queue it put into when it exits normally (only a crash reads as death).</summary>
internal static class ProducerExit
{
    private static readonly HashSet<SharedRing> Rings = [];
    private static readonly Lock Gate = new();
    private static bool _hooked;

    public static void Track(SharedRing ring)
    {
        lock (Gate)
        {
            Rings.Add(ring);
            if (_hooked) return;
            _hooked = true;
            AppDomain.CurrentDomain.ProcessExit += static (_, _) =>
            {
                SharedRing[] rings;
                lock (Gate) rings = [.. Rings];
                foreach (var r in rings) r.ForgetThisProducer();
            };
        }
    }

    public static void Untrack(SharedRing ring)
    {
        lock (Gate) Rings.Remove(ring);
    }
}
