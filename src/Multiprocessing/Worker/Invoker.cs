using System.Buffers;
using System.Collections.Concurrent;

namespace Multiprocessing;

/// <summary>
/// Runs a shipped delegate over a batch of argument tuples inside a worker. One typed invoker is
/// built per delegate type (<c>Func&lt;T, TResult&gt;</c>, <c>Action&lt;T1, T2&gt;</c>, ...), so the
/// per-item cost is a typed delegate call, not reflection. Argument tuples are: nothing (a
/// placeholder <see cref="bool"/>) for no arguments, the value itself for one, a value tuple for more.
/// </summary>
internal abstract class Invoker
{
    private static readonly ConcurrentDictionary<Type, Invoker> Cache = new();

    /// <summary>Deserializes the items, calls the delegate on each, serializes the results as an array.</summary>
    /// <param name="target">The delegate.</param>
    /// <param name="items">The serialized argument tuples.</param>
    /// <param name="output">Receives the serialized results.</param>
    /// <param name="serializer">Reads the arguments and writes the results.</param>
    /// <param name="status">Told when the user's code is about to run (a crash before that is not the task's doing).</param>
    public abstract void Run(Delegate target, ReadOnlyMemory<byte> items, IBufferWriter<byte> output, ISerializer serializer, WorkerStatus? status = null);

    public static Invoker For(Type delegateType) => Cache.GetOrAdd(delegateType, Create);

    /// <summary>The argument-tuple type for a delegate's parameters, as <see cref="For"/> expects them.</summary>
    public static Type ItemType(Type[] parameters) => parameters.Length switch
    {
        0 => typeof(bool),
        1 => parameters[0],
        2 => typeof(ValueTuple<,>).MakeGenericType(parameters),
        3 => typeof(ValueTuple<,,>).MakeGenericType(parameters),
        4 => typeof(ValueTuple<,,,>).MakeGenericType(parameters),
        _ => throw new NotSupportedException("Workers take delegates of up to four parameters; pass a record or tuple for more."),
    };

    private static Invoker Create(Type delegateType)
    {
        if (!delegateType.IsGenericType && delegateType == typeof(Action)) return new ActionInvoker0();
        if (Awaiting(delegateType) is { } awaiting) return awaiting;
        if (!delegateType.IsGenericType)
            throw new NotSupportedException($"Workers run Func<...> and Action<...> delegates, not {delegateType.FullName}.");
        var definition = delegateType.GetGenericTypeDefinition();
        var args = delegateType.GetGenericArguments();
        var invoker = definition switch
        {
            _ when definition == typeof(Func<>) => typeof(FuncInvoker0<>),
            _ when definition == typeof(Func<,>) => typeof(FuncInvoker1<,>),
            _ when definition == typeof(Func<,,>) => typeof(FuncInvoker2<,,>),
            _ when definition == typeof(Func<,,,>) => typeof(FuncInvoker3<,,,>),
            _ when definition == typeof(Func<,,,,>) => typeof(FuncInvoker4<,,,,>),
            _ when definition == typeof(Action<>) => typeof(ActionInvoker1<>),
            _ when definition == typeof(Action<,>) => typeof(ActionInvoker2<,>),
            _ when definition == typeof(Action<,,>) => typeof(ActionInvoker3<,,>),
            _ when definition == typeof(Action<,,,>) => typeof(ActionInvoker4<,,,>),
            _ => throw new NotSupportedException($"Workers run Func<...> and Action<...> delegates of up to four parameters, not {delegateType.FullName}."),
        };
        return (Invoker)Activator.CreateInstance(invoker.MakeGenericType(args))!;
    }

    /// <summary>
    /// For an async function (<c>Func&lt;..., Task&lt;TResult&gt;&gt;</c>, <c>Func&lt;..., Task&gt;</c>, or the
    /// <c>ValueTask</c> forms): an invoker that awaits each call, so what travels back is the awaited value or
    /// exception, never the task. Null for other delegates.
    /// </summary>
    private static Invoker? Awaiting(Type delegateType)
    {
        if (!delegateType.IsGenericType || !delegateType.Name.StartsWith("Func`", StringComparison.Ordinal)) return null;
        var args = delegateType.GetGenericArguments();
        var parameters = args[..^1];
        var returns = args[^1];
        Type? result = null;
        Type kind;
        if (returns == typeof(Task)) (kind, result) = (typeof(TaskAwaiting), typeof(bool));
        else if (returns == typeof(ValueTask)) (kind, result) = (typeof(ValueTaskAwaiting), typeof(bool));
        else if (returns.IsGenericType && returns.GetGenericTypeDefinition() == typeof(Task<>)) (kind, result) = (typeof(TaskAwaiting<>).MakeGenericType(returns.GetGenericArguments()), returns.GetGenericArguments()[0]);
        else if (returns.IsGenericType && returns.GetGenericTypeDefinition() == typeof(ValueTask<>)) (kind, result) = (typeof(ValueTaskAwaiting<>).MakeGenericType(returns.GetGenericArguments()), returns.GetGenericArguments()[0]);
        else return null;
        var item = ItemType(parameters);
        var invoker = typeof(AwaitingInvoker<,,>).MakeGenericType(item, returns, result);
        return (Invoker)Activator.CreateInstance(invoker, Activator.CreateInstance(kind), Spread(delegateType, parameters, item, returns))!;
    }

    /// <summary>Turns a delegate of N parameters into one over the argument tuple (built once per delegate type).</summary>
    private static Delegate Spread(Type delegateType, Type[] parameters, Type item, Type returns)
    {
        var target = System.Linq.Expressions.Expression.Parameter(typeof(Delegate), "target");
        var tuple = System.Linq.Expressions.Expression.Parameter(item, "item");
        var typed = System.Linq.Expressions.Expression.Convert(target, delegateType);
        System.Linq.Expressions.Expression[] arguments = parameters.Length switch
        {
            0 => [],
            1 => [tuple],
            _ => [.. parameters.Select((_, i) => System.Linq.Expressions.Expression.Field(tuple, $"Item{i + 1}"))],
        };
        var call = System.Linq.Expressions.Expression.Invoke(typed, arguments);
        var funcType = typeof(Func<,,>).MakeGenericType(typeof(Delegate), item, returns);
        return System.Linq.Expressions.Expression.Lambda(funcType, call, target, tuple).Compile();
    }

    /// <summary>Waits for one kind of task and takes its result.</summary>
    private interface IAwaiting<in TTask, out TResult>
    {
        TResult Await(TTask task);
    }

    private sealed class TaskAwaiting : IAwaiting<Task, bool>
    {
        public bool Await(Task task) { task.GetAwaiter().GetResult(); return true; }
    }

    private sealed class ValueTaskAwaiting : IAwaiting<ValueTask, bool>
    {
        public bool Await(ValueTask task) { task.GetAwaiter().GetResult(); return true; }
    }

    private sealed class TaskAwaiting<T> : IAwaiting<Task<T>, T>
    {
        public T Await(Task<T> task) => task.GetAwaiter().GetResult();
    }

    private sealed class ValueTaskAwaiting<T> : IAwaiting<ValueTask<T>, T>
    {
        public T Await(ValueTask<T> task) => task.GetAwaiter().GetResult();
    }

    /// <summary>
    /// Calls an async function per item and blocks the worker's call thread until its task ends: a worker runs
    /// one call at a time, and no synchronization context waits on that thread, so nothing can deadlock.
    /// </summary>
    private sealed class AwaitingInvoker<TItem, TTask, TResult>(IAwaiting<TTask, TResult> awaiting, Func<Delegate, TItem, TTask> call) : Typed<TItem, TResult>
    {
        protected override TResult Call(Delegate target, TItem item)
        {
            CallRunner.FlowingToken.Value = CallRunner.CurrentToken;
            try
            {
                var task = call(target, item);
                if (task is null) throw new InvalidOperationException($"The async function {target.Method.Name} returned a null task; return a task (an async method always does).");
                return awaiting.Await(task);
            }
            finally
            {
                CallRunner.FlowingToken.Value = default;
            }
        }
    }

    /// <summary>Runs each item; an action's results are an array of placeholders.</summary>
    private abstract class Typed<TItem, TResult> : Invoker
    {
        public sealed override void Run(Delegate target, ReadOnlyMemory<byte> items, IBufferWriter<byte> output, ISerializer serializer, WorkerStatus? status = null)
        {
            TItem[] input;
            try
            {
                input = serializer.Deserialize<TItem[]>(items);
            }
            catch (Exception e)
            {
                throw TravelErrors.CannotRead("The arguments", typeof(TItem), e);
            }
            status?.UserCodeStarts();
            var results = new TResult[input.Length];
            for (var i = 0; i < input.Length; i++) results[i] = Call(target, input[i]);
            try
            {
                serializer.Serialize(output, results);
            }
            catch (Exception e)
            {
                throw Chunk.Failure(serializer, results, e, i => results.Length == 1 ? "The result" : $"The result of item {i} of its chunk");
            }
        }

        protected abstract TResult Call(Delegate target, TItem item);
    }

    private sealed class FuncInvoker0<TR> : Typed<bool, TR>
    {
        protected override TR Call(Delegate t, bool _) => ((Func<TR>)t)();
    }

    private sealed class FuncInvoker1<T1, TR> : Typed<T1, TR>
    {
        protected override TR Call(Delegate t, T1 a) => ((Func<T1, TR>)t)(a);
    }

    private sealed class FuncInvoker2<T1, T2, TR> : Typed<(T1, T2), TR>
    {
        protected override TR Call(Delegate t, (T1, T2) a) => ((Func<T1, T2, TR>)t)(a.Item1, a.Item2);
    }

    private sealed class FuncInvoker3<T1, T2, T3, TR> : Typed<(T1, T2, T3), TR>
    {
        protected override TR Call(Delegate t, (T1, T2, T3) a) => ((Func<T1, T2, T3, TR>)t)(a.Item1, a.Item2, a.Item3);
    }

    private sealed class FuncInvoker4<T1, T2, T3, T4, TR> : Typed<(T1, T2, T3, T4), TR>
    {
        protected override TR Call(Delegate t, (T1, T2, T3, T4) a) => ((Func<T1, T2, T3, T4, TR>)t)(a.Item1, a.Item2, a.Item3, a.Item4);
    }

    private sealed class ActionInvoker0 : Typed<bool, bool>
    {
        protected override bool Call(Delegate t, bool _) { ((Action)t)(); return true; }
    }

    private sealed class ActionInvoker1<T1> : Typed<T1, bool>
    {
        protected override bool Call(Delegate t, T1 a) { ((Action<T1>)t)(a); return true; }
    }

    private sealed class ActionInvoker2<T1, T2> : Typed<(T1, T2), bool>
    {
        protected override bool Call(Delegate t, (T1, T2) a) { ((Action<T1, T2>)t)(a.Item1, a.Item2); return true; }
    }

    private sealed class ActionInvoker3<T1, T2, T3> : Typed<(T1, T2, T3), bool>
    {
        protected override bool Call(Delegate t, (T1, T2, T3) a) { ((Action<T1, T2, T3>)t)(a.Item1, a.Item2, a.Item3); return true; }
    }

    private sealed class ActionInvoker4<T1, T2, T3, T4> : Typed<(T1, T2, T3, T4), bool>
    {
        protected override bool Call(Delegate t, (T1, T2, T3, T4) a) { ((Action<T1, T2, T3, T4>)t)(a.Item1, a.Item2, a.Item3, a.Item4); return true; }
    }
}
