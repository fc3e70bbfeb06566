using System.Buffers;
using MessagePack;
using MessagePack.Formatters;
using MessagePack.Resolvers;

namespace Multiprocessing;

/// <summary>
/// How proxies travel: as a handle (the manager's endpoint, its auth key and the object id) in a
/// MessagePack extension, so a proxy captured by a worker's lambda, passed as an argument, or
/// stored inside another manager object arrives attached to the same object. Registered with
/// <see cref="HandleResolver"/>. <c>IDictionary&lt;,&gt;</c>, <c>IList&lt;&gt;</c> and user interfaces
/// get formatters that write a proxy as a handle and anything else exactly as before.
/// </summary>
internal static class ProxyHandles
{
    public const sbyte ExtensionCode = 0x4D;
    private const int MaxKeyLength = 1024;

    /// <summary>The <see cref="HandleResolver"/> provider: a formatter for <paramref name="type"/>, or null.</summary>
    public static object? FormatterFor(Type type)
    {
        if (type.IsGenericType && !type.ContainsGenericParameters)
        {
            var definition = type.GetGenericTypeDefinition();
            var args = type.GetGenericArguments();
            if (definition == typeof(IDictionary<,>)) return Make(typeof(DictionaryInterfaceFormatter<,>), args);
            if (definition == typeof(IList<>)) return Make(typeof(ListInterfaceFormatter<>), args);
            if (definition == typeof(MemoizedFunction<,>)) return Make(typeof(MemoizedFunctionFormatter<,>), args);
        }
        if (type == typeof(Manager)) return new ManagerFormatter();
        if (type.IsClass && typeof(ServiceProxy).IsAssignableFrom(type)) return Make(typeof(ServiceRuntimeFormatter<>), type);
        if (type.IsClass && !type.IsAbstract && typeof(IManagerProxy).IsAssignableFrom(type)) return Make(typeof(ProxyFormatter<>), type);
        if (IsServiceInterface(type)) return Make(typeof(ServiceInterfaceFormatter<>), type);
        return null;
    }

    /// <summary>
    /// A user's interface, which a registered service's proxy may implement (framework interfaces never are, nor the
    /// library's own, such as <see cref="IProcessLock"/>: a value declared as one of those travels with its runtime type,
    /// a shared-memory lock's handle or a manager proxy's).
    /// </summary>
    private static bool IsServiceInterface(Type type) =>
        type.IsInterface && type.IsVisible && !type.ContainsGenericParameters && type.Assembly != typeof(ProxyHandles).Assembly && type.Namespace is var ns
        && !(ns is not null && (ns == "System" || ns.StartsWith("System.", StringComparison.Ordinal) || ns.StartsWith("Microsoft.", StringComparison.Ordinal) || ns.StartsWith("MessagePack", StringComparison.Ordinal)));

    private static object Make(Type definition, params Type[] args) => Activator.CreateInstance(definition.MakeGenericType(args))!;

    public static void Write(ref MessagePackWriter writer, IManagerProxy proxy, byte[]? extra = null)
    {
        if (proxy.Client.Endpoint.StartsWith("unix:", StringComparison.Ordinal))
            MachineBoundary.Check(proxy.GetType(), "is a proxy of a manager reached over a Unix socket, on this machine only");
        var body = new ArrayBufferWriter<byte>(128);
        var w = new MessagePackWriter(body);
        w.WriteArrayHeader(extra is null ? 3 : 4);
        w.Write(proxy.Client.Endpoint);
        w.Write(proxy.Client.AuthKey);
        w.Write(proxy.ObjectId);
        if (extra is not null) w.Write(extra);
        w.Flush();
        writer.WriteExtensionFormatHeader(new ExtensionHeader(ExtensionCode, (uint)body.WrittenCount));
        writer.WriteRaw(body.WrittenSpan);
    }

    /// <summary>True when the next value is a proxy handle.</summary>
    public static bool IsHandle(ref MessagePackReader reader)
    {
        if (reader.NextMessagePackType != MessagePackType.Extension) return false;
        var peek = reader.CreatePeekReader();
        return peek.ReadExtensionFormatHeader().TypeCode == ExtensionCode;
    }

    public static (ManagerClient Client, long Id, byte[]? Extra) Read(ref MessagePackReader reader)
    {
        var extension = reader.ReadExtensionFormat();
        if (extension.TypeCode != ExtensionCode) throw new MessagePackSerializationException($"Expected a manager proxy handle, found extension type {extension.TypeCode}.");
        var r = new MessagePackReader(extension.Data);
        var count = r.ReadArrayHeader();
        if (count is not (3 or 4)) throw new MessagePackSerializationException("Malformed manager proxy handle.");
        var endpoint = r.ReadString() ?? throw new MessagePackSerializationException("A manager proxy handle has no endpoint.");
        var key = r.ReadBytes() is { Length: > 0 and <= MaxKeyLength } k ? k.ToArray() : throw new MessagePackSerializationException("A manager proxy handle has no valid auth key.");
        var id = r.ReadInt64();
        var extra = count == 4 ? r.ReadBytes()?.ToArray() : null;
        return (ManagerClient.For(endpoint, key), id, extra);
    }

    /// <summary>A manager captured by a worker's lambda arrives as a client of the same server (it does not own it).</summary>
    private sealed class ManagerFormatter : IMessagePackFormatter<Manager?>
    {
        public void Serialize(ref MessagePackWriter writer, Manager? value, MessagePackSerializerOptions options)
        {
            if (value is null) writer.WriteNil();
            else ProxyHandles.Write(ref writer, value);
        }

        public Manager? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (reader.TryReadNil()) return null;
            var (client, _, _) = ProxyHandles.Read(ref reader);
            return Manager.Attach(client);
        }
    }

    /// <summary>A proxy class of the library, by its exact type.</summary>
    private sealed class ProxyFormatter<T> : IMessagePackFormatter<T?> where T : class, IAttachableProxy<T>
    {
        public void Serialize(ref MessagePackWriter writer, T? value, MessagePackSerializerOptions options)
        {
            if (value is null) writer.WriteNil();
            else ProxyHandles.Write(ref writer, value);
        }

        public T? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (reader.TryReadNil()) return null;
            var (client, id, _) = ProxyHandles.Read(ref reader);
            return T.Attach(client, id);
        }
    }

    /// <summary>A formatter that handles proxies and hands everything else to the formatter that would have run without us.</summary>
    private abstract class UnionFormatter<T> : IMessagePackFormatter<T?> where T : class
    {
        private IMessagePackFormatter<T>? _fallback;

        private IMessagePackFormatter<T> Fallback => _fallback ??= ContractlessStandardResolverAllowPrivate.Instance.GetFormatter<T>()
            ?? throw new FormatterNotRegisteredException($"{typeof(T).FullName} is not registered in the resolver; only manager proxies of this interface can travel.");

        public void Serialize(ref MessagePackWriter writer, T? value, MessagePackSerializerOptions options)
        {
            if (value is IManagerProxy proxy && IsProxy(value)) ProxyHandles.Write(ref writer, proxy);
            else Fallback.Serialize(ref writer, value!, options);
        }

        public T? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (!IsHandle(ref reader)) return Fallback.Deserialize(ref reader, options);
            var (client, id, _) = ProxyHandles.Read(ref reader);
            return Attach(client, id);
        }

        protected abstract bool IsProxy(T value);
        protected abstract T Attach(ManagerClient client, long id);
    }

    private sealed class DictionaryInterfaceFormatter<TKey, TValue> : UnionFormatter<IDictionary<TKey, TValue>> where TKey : notnull
    {
        protected override bool IsProxy(IDictionary<TKey, TValue> value) => value is DictionaryProxy<TKey, TValue>;
        protected override IDictionary<TKey, TValue> Attach(ManagerClient client, long id) => new DictionaryProxy<TKey, TValue>(client, id);
    }

    private sealed class ListInterfaceFormatter<T> : UnionFormatter<IList<T>>
    {
        protected override bool IsProxy(IList<T> value) => value is ListProxy<T>;
        protected override IList<T> Attach(ManagerClient client, long id) => new ListProxy<T>(client, id);
    }

    private sealed class ServiceInterfaceFormatter<TService> : UnionFormatter<TService> where TService : class
    {
        protected override bool IsProxy(TService value) => value is ServiceProxy;
        protected override TService Attach(ManagerClient client, long id) => ServiceProxy.Create<TService>(client, id);
    }

    /// <summary>The class DispatchProxy made for a service; it travels as its interface (see DelegateShipper), so this only writes.</summary>
    private sealed class ServiceRuntimeFormatter<T> : IMessagePackFormatter<T?> where T : class
    {
        public void Serialize(ref MessagePackWriter writer, T? value, MessagePackSerializerOptions options)
        {
            if (value is null) writer.WriteNil();
            else ProxyHandles.Write(ref writer, (IManagerProxy)value);
        }

        public T? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options) =>
            throw new MessagePackSerializationException($"A registered service's proxy travels as its interface; declare the variable or parameter as the interface, not {typeof(T).Name}.");
    }

    /// <summary>
    /// A memoized function travels with its function. The function's closure often holds the memoized
    /// delegate itself (both live in one scope): that inner reference is written without the function
    /// and read back as the instance being rebuilt, so the cycle closes instead of recursing.
    /// </summary>
    private sealed class MemoizedFunctionFormatter<TArg, TResult> : IMessagePackFormatter<MemoizedFunction<TArg, TResult>?>
    {
        [ThreadStatic] private static HashSet<object>? _writing;
        [ThreadStatic] private static Dictionary<(ManagerClient, long), MemoizedFunction<TArg, TResult>>? _reading;

        public void Serialize(ref MessagePackWriter writer, MemoizedFunction<TArg, TResult>? value, MessagePackSerializerOptions options)
        {
            if (value is null) { writer.WriteNil(); return; }
            _writing ??= new HashSet<object>(ReferenceEqualityComparer.Instance);
            if (!_writing.Add(value)) { ProxyHandles.Write(ref writer, value); return; }
            try { ProxyHandles.Write(ref writer, value, ManagerSerialization.ShipFunction(value.Function)); }
            finally { _writing.Remove(value); }
        }

        public MemoizedFunction<TArg, TResult>? Deserialize(ref MessagePackReader reader, MessagePackSerializerOptions options)
        {
            if (reader.TryReadNil()) return null;
            var (client, id, extra) = ProxyHandles.Read(ref reader);
            _reading ??= [];
            if (extra is null)
                return _reading.TryGetValue((client, id), out var outer) ? outer
                    : throw new MessagePackSerializationException("A memoized function's handle carries no function.");
            var instance = new MemoizedFunction<TArg, TResult>(client, id, null);
            _reading[(client, id)] = instance;
            try
            {
                var r = new MessagePackReader(extra);
                instance.Function = (Func<TArg, TResult>)DelegateShipper.Read(ref r, ManagerSerialization.Untrusted);
            }
            finally { _reading.Remove((client, id)); }
            return instance;
        }
    }
}
