namespace Multiprocessing;

/// <summary>
/// A pure function whose results are cached in a manager and shared by every process that calls it
/// (see <see cref="Manager.Memoize{TArg, TResult}"/>). A call asks the manager for the argument's
/// result; on a miss it computes here and stores the result. Two processes that miss the same argument
/// at once both compute it (the function is pure, so either result is right).
/// </summary>
internal sealed class MemoizedFunction<TArg, TResult>(ManagerClient client, long cacheId, Func<TArg, TResult>? function) : IManagerProxy
{
    private Func<TArg, TResult>? _function = function;

    public ManagerClient Client => client;
    public long ObjectId => cacheId;

    /// <summary>Set once, after construction, when the function's closure refers back to this object (see ProxyHandles).</summary>
    public Func<TArg, TResult> Function
    {
        get => _function ?? throw new InvalidOperationException("The memoized function is still being rebuilt.");
        set => _function = value;
    }

    public TResult Invoke(TArg argument)
    {
        var key = ManagerSerialization.ToBytes(argument);
        using (var lookup = client.Begin(cacheId, ManagerOp.CacheGet))
        {
            lookup.Write(key);
            var reply = lookup.Send();
            if (reply.ReadBoolean()) return ManagerCall.ReadValue<TResult>(ref reply);
        }
        var result = Function(argument);
        using var store = client.Begin(cacheId, ManagerOp.CachePut);
        store.Write(key);
        store.WriteValue(result);
        store.Send();
        return result;
    }
}
