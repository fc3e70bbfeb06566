namespace Multiprocessing;

/// <summary>Makes a pair of connected <see cref="Connection{T}"/>s, like Python's <c>multiprocessing.Pipe()</c>.</summary>
public static class Pipe
{
    /// <summary>
    /// Creates a pipe. With <paramref name="duplex"/> (the default) both ends send and receive; otherwise the first
    /// end only receives and the second only sends, as Python's <c>Pipe(duplex=False)</c> returns <c>(reader, writer)</c>.
    /// </summary>
    /// <param name="duplex">Whether both ends can send.</param>
    /// <param name="ringBytes">Bytes of each direction's shared ring; larger messages spill into further blocks.</param>
    public static (Connection<T> Left, Connection<T> Right) Create<T>(bool duplex = true, int ringBytes = ProcessQueue<T>.DefaultRingBytes)
    {
        var forward = SharedRing.Create(ringBytes, 0, "pipe");
        forward.ForgetProducersOnExit = false;
        SharedRing? backward = null;
        if (duplex)
        {
            try
            {
                backward = SharedRing.Create(ringBytes, 0, "pipe");
                backward.ForgetProducersOnExit = false;
            }
            catch
            {
                forward.Dispose();
                throw;
            }
        }
        // Left receives what right sends on 'forward'; right receives what left sends on 'backward'.
        var owner = new PipeOwnership(forward, backward, 2);
        return (new Connection<T>(send: backward, receive: forward, owner), new Connection<T>(send: forward, receive: backward, owner));
    }
}
