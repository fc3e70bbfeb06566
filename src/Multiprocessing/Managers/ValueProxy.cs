namespace Multiprocessing;

/// <summary>
/// One value that lives in a manager's process (Python's <c>Manager().Value</c>). Reading and
/// writing <see cref="Value"/> are one request each; <see cref="Update"/> changes it atomically
/// in the manager, so a counter shared by many processes needs no lock.
/// </summary>
/// <typeparam name="T">The value type; serializable.</typeparam>
public sealed class ValueProxy<T> : IAttachableProxy<ValueProxy<T>>
{
    private readonly ManagerClient _client;
    private readonly long _id;

    internal ValueProxy(ManagerClient client, long id)
    {
        _client = client;
        _id = id;
    }

    ManagerClient IManagerProxy.Client => _client;
    long IManagerProxy.ObjectId => _id;
    static ValueProxy<T> IAttachableProxy<ValueProxy<T>>.Attach(ManagerClient client, long objectId) => new(client, objectId);

    /// <summary>The current value. <c>v.Value += 1</c> is a read and a write: two requests, not atomic (use <see cref="Update"/>, or a lock).</summary>
    public T Value
    {
        get
        {
            using var call = _client.Begin(_id, ManagerOp.ValueGet);
            var reply = call.Send();
            return ManagerCall.ReadValue<T>(ref reply);
        }
        set
        {
            using var call = _client.Begin(_id, ManagerOp.ValueSet);
            call.WriteValue(value);
            call.Send();
        }
    }

    /// <summary>
    /// Replaces the value with <paramref name="update"/>(value), atomically, in one request: the
    /// function travels to the manager (like a worker delegate; a closure's captures travel with
    /// it) and runs there while no other request on this value can interleave. Keep it short and pure.
    /// </summary>
    /// <returns>The new value.</returns>
    public T Update(Func<T, T> update)
    {
        ArgumentNullException.ThrowIfNull(update);
        var function = ManagerSerialization.ShipFunction(update);
        using var call = _client.Begin(_id, ManagerOp.ValueUpdate);
        call.Write(function);
        var reply = call.Send();
        return ManagerCall.ReadValue<T>(ref reply);
    }

    /// <inheritdoc />
    public override string ToString() => $"<ValueProxy object {_id} at {_client.Endpoint}>";
}
