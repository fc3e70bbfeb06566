using System.Reflection;

namespace Multiprocessing;

/// <summary>
/// The proxy behind <see cref="Manager.Register{TService, TImpl}"/>: each call of a
/// <c>TService</c> method travels to the manager, runs on the one shared instance, and its result
/// or exception comes back. Not sealed because <see cref="DispatchProxy"/> derives the class
/// implementing <c>TService</c> from it at run time.
/// </summary>
internal class ServiceProxy : DispatchProxy, IManagerProxy
{
    private ManagerClient _client = null!;
    private long _id;
    private Dictionary<MethodInfo, int> _index = null!;

    public ManagerClient Client => _client;
    public long ObjectId => _id;

    public static TService Create<TService>(ManagerClient client, long id) where TService : class
    {
        var proxy = DispatchProxy.Create<TService, ServiceProxy>();
        var self = (ServiceProxy)(object)proxy;
        self._client = client;
        self._id = id;
        self._index = ServiceMethods.Index(typeof(TService));
        return proxy;
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        if (!_index.TryGetValue(targetMethod, out var index))
            throw new NotSupportedException($"{targetMethod.Name} is not a method of the registered interface.");
        var parameters = targetMethod.GetParameters();
        var encoded = new byte[parameters.Length][];
        for (var i = 0; i < parameters.Length; i++)
            encoded[i] = ManagerSerialization.ToBytes(args?[i], parameters[i].ParameterType, $"argument '{parameters[i].Name}' of {targetMethod.Name}");
        using var call = _client.Begin(_id, ManagerOp.ServiceCall);
        call.Write(index);
        call.WriteArrayHeader(encoded.Length);
        foreach (var argument in encoded) call.Write(argument);
        var reply = call.Send();
        if (targetMethod.ReturnType == typeof(void)) return null;
        var bytes = reply.ReadBytes() ?? throw new MultiprocessingException("The manager sent no result where one was expected.");
        return ManagerSerialization.FromBytes(bytes, targetMethod.ReturnType);
    }
}

/// <summary>The methods of a registered interface, in an order both sides compute the same way, and the rules they must meet.</summary>
internal static class ServiceMethods
{
    public static MethodInfo[] Of(Type service) =>
        [.. new[] { service }.Concat(service.GetInterfaces())
            .SelectMany(t => t.GetMethods(BindingFlags.Public | BindingFlags.Instance))
            .OrderBy(m => m.DeclaringType!.AssemblyQualifiedName, StringComparer.Ordinal)
            .ThenBy(m => m.MetadataToken)];

    public static Dictionary<MethodInfo, int> Index(Type service)
    {
        var methods = Of(service);
        var index = new Dictionary<MethodInfo, int>();
        for (var i = 0; i < methods.Length; i++) index[methods[i]] = i;
        return index;
    }

    /// <summary>Refuses, naming the member, what cannot be called across processes.</summary>
    public static void Validate(Type service, Type implementation)
    {
        if (!service.IsInterface)
            throw new ArgumentException($"Register<TService, TImpl> serves a class through an interface: {service.FullName} is not an interface. Declare one with the members to share.", nameof(service));
        if (service.IsGenericTypeDefinition || service.ContainsGenericParameters)
            throw new ArgumentException($"{service.FullName} has open generic parameters; register a closed interface type.", nameof(service));
        if (!service.IsVisible)
            throw new ArgumentException($"The interface {service.FullName} must be public so the manager can build a proxy for it.", nameof(service));
        if (implementation.IsAbstract || implementation.GetConstructor(Type.EmptyTypes) is null)
            throw new ArgumentException($"{implementation.FullName} must be a concrete class with a public parameterless constructor; the manager creates the instance.", nameof(implementation));
        foreach (var e in service.GetEvents())
            throw new NotSupportedException($"{service.FullName}.{e.Name} is an event; events cannot be raised across processes. Poll a method or use a queue instead.");
        foreach (var method in Of(service))
        {
            var where = $"{method.DeclaringType!.FullName}.{method.Name}";
            if (method.IsGenericMethodDefinition)
                throw new NotSupportedException($"{where} is a generic method; a manager proxy needs concrete parameter types. Add a non-generic overload.");
            if (method.GetParameters().FirstOrDefault(p => p.ParameterType.IsByRef) is { } byRef)
                throw new NotSupportedException($"{where} has a ref/out/in parameter '{byRef.Name}'; results travel back as the return value only. Return a tuple or record instead.");
            if (typeof(Task).IsAssignableFrom(method.ReturnType) || method.ReturnType.Name.StartsWith("ValueTask", StringComparison.Ordinal) || typeof(Delegate).IsAssignableFrom(method.ReturnType))
                throw new NotSupportedException($"{where} returns {method.ReturnType.Name}, which cannot come back from another process. Manager calls are synchronous: return the result itself.");
        }
    }
}
