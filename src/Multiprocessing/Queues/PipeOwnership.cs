namespace Multiprocessing;

/// <summary>The rings of a pipe in one process, released when the last end using them here is disposed.</summary>
internal sealed class PipeOwnership(SharedRing? first, SharedRing? second, int ends)
{
    private int _ends = ends;

    public void Release()
    {
        if (Interlocked.Decrement(ref _ends) != 0) return;
        first?.Dispose();
        second?.Dispose();
    }
}
