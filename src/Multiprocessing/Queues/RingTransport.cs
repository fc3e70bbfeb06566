namespace Multiprocessing;

/// <summary>
/// A <see cref="Pipe"/> end's transport: one shared-memory ring per direction, each with one writer and one reader
/// (see <see cref="SharedRing"/>). Its end travels to other processes by the rings' names (see <see cref="QueueHandles"/>).
/// </summary>
internal sealed class RingTransport<T>(SharedRing? send, SharedRing? receive, PipeOwnership owner) : ConnectionTransport<T>
{
    public SharedRing? SendRing => send;

    public SharedRing? ReceiveRing => receive;

    public override bool CanReceive => receive is not null;

    public override bool CanSend => send is not null;

    public override void Send(T message)
    {
        var ring = send!;
        try
        {
            ring.Put(message, countUnfinished: false, Deadline.Infinite, CancellationToken.None, "The message");
        }
        catch (InvalidOperationException) when (ring.IsClosed)
        {
            throw new ObjectDisposedException(nameof(Connection<T>), "This end of the pipe was closed.");
        }
    }

    // A full ring spills rather than waits for the reader, so a send completes at once.
    public override ValueTask SendAsync(T message, CancellationToken cancellationToken)
    {
        Send(message);
        return ValueTask.CompletedTask;
    }

    public override bool TryReceive(out T message, Deadline deadline) =>
        receive!.Take(out message, deadline, CancellationToken.None, endOfStream: true);

    public override ValueTask<T> ReceiveAsync(CancellationToken cancellationToken)
    {
        var ring = receive!;
        if (ring.HasData && ring.Take(out T message, Deadline.After(TimeSpan.Zero), cancellationToken, endOfStream: true)) return new(message);
        return new ValueTask<T>(Futex.OnDedicatedThread(() =>
        {
            ring.Take(out T received, Deadline.Infinite, cancellationToken, endOfStream: true);
            return received;
        }));
    }

    public override bool Poll(Deadline deadline) => receive!.WaitForData(deadline, CancellationToken.None, endOfStream: true);

    // The ring has no event to await: the wait sleeps on its futex word, on a thread of its own; cancelling wakes it.
    public override Task WhenReadableAsync(CancellationToken cancellationToken)
    {
        var ring = receive!;
        return Futex.OnDedicatedThread(() => ring.WaitForData(Deadline.Infinite, cancellationToken, endOfStream: true));
    }

    public override void Close()
    {
        send?.Close();
        receive?.CloseReader();
    }

    public override void Release() => owner.Release();
}
