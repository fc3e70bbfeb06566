namespace Multiprocessing;

/// <summary>
/// An event that lives in a manager's process (Python's <c>Manager().Event()</c>), with the members of
/// <see cref="ProcessEvent"/> through <see cref="IProcessEvent"/>; reachable from any process that reaches the manager.
/// </summary>
public sealed class EventProxy : IProcessEvent, IAttachableProxy<EventProxy>
{
    private readonly ManagerClient _client;
    private readonly long _id;

    internal EventProxy(ManagerClient client, long id)
    {
        _client = client;
        _id = id;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static EventProxy IAttachableProxy<EventProxy>.Attach(ManagerClient client, long objectId) => new(client, objectId);

    /// <inheritdoc />
    public bool IsSet
    {
        get
        {
            using var call = _client.Begin(_id, ManagerOp.EventIsSet);
            return call.Send().ReadBoolean();
        }
    }

    /// <inheritdoc />
    public void Set() => Simple(ManagerOp.EventSet);

    /// <inheritdoc />
    public void Clear() => Simple(ManagerOp.EventClear);

    /// <inheritdoc />
    public void Wait() => ManagerWaits.Until(WaitOnce, Timeout.InfiniteTimeSpan);

    /// <inheritdoc />
    public bool Wait(TimeSpan timeout) => ManagerWaits.Until(WaitOnce, timeout);

    /// <inheritdoc />
    public ValueTask WaitAsync(CancellationToken cancellationToken = default) =>
        new(ManagerWaits.UntilAsync(WaitOnce, Timeout.InfiniteTimeSpan, cancellationToken).AsTask());

    /// <inheritdoc />
    public ValueTask<bool> WaitAsync(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        ManagerWaits.UntilAsync(WaitOnce, timeout, cancellationToken);

    /// <inheritdoc />
    public override string ToString() => $"<EventProxy object {_id} at {_client.Endpoint}>";

    private void Simple(ManagerOp op)
    {
        using var call = _client.Begin(_id, op);
        call.Send();
    }

    private bool WaitOnce(int milliseconds)
    {
        using var call = _client.Begin(_id, ManagerOp.EventWait);
        call.Write(milliseconds);
        return call.Send().ReadBoolean();
    }
}
