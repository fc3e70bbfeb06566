using System.Reflection;
using MessagePack;

namespace Multiprocessing;

/// <summary>An instance of a user's class behind <see cref="Manager.Register{TService, TImpl}"/>; its methods run one call at a time.</summary>
internal sealed class ServedService : ServedObject
{
    private readonly object _instance;
    private readonly MethodInfo[] _methods;

    public ServedService(Type service, Type implementation)
    {
        if (!service.IsInterface || !service.IsAssignableFrom(implementation) || implementation.IsAbstract)
            throw new ArgumentException($"{implementation.FullName} must be a concrete class implementing the interface {service.FullName}.");
        if (implementation.GetConstructor(Type.EmptyTypes) is not { } constructor)
            throw new ArgumentException($"{implementation.FullName} needs a public parameterless constructor so the manager can create it.");
        ServiceName = service.FullName ?? service.Name;
        _methods = ServiceMethods.Of(service);
        try { _instance = constructor.Invoke(null); }
        catch (TargetInvocationException e) when (e.InnerException is { } inner) { throw new ServedUserException(inner); }
    }

    public string ServiceName { get; }

    public override ServedKind Kind => ServedKind.Service;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        if (op != ManagerOp.ServiceCall) throw Unknown(op, Kind);
        // The index into ServiceMethods.Of(service), which client and server compute alike.
        var index = args.ReadInt32();
        if ((uint)index >= (uint)_methods.Length) throw new ManagerProtocolException($"{index} is not a method index of {ServiceName}");
        var method = _methods[index];
        var parameters = method.GetParameters();
        if (args.ReadArrayHeader() != parameters.Length) throw new ManagerProtocolException($"wrong argument count for {method.Name}");
        var values = new object?[parameters.Length];
        for (var i = 0; i < values.Length; i++) values[i] = ServedCode.Deserialize(ReadBlob(ref args), parameters[i].ParameterType);
        object? result;
        lock (_instance)
        {
            try { result = method.Invoke(_instance, values); }
            catch (TargetInvocationException e) when (e.InnerException is { } inner) { throw new ServedUserException(inner); }
        }
        if (method.ReturnType == typeof(void)) reply.WriteNil();
        else reply.Write(ServedCode.Serialize(result, method.ReturnType));
    }
}
