using System.Reflection;
using System.Runtime.ExceptionServices;
using MessagePack;

namespace Multiprocessing;

/// <summary>
/// Exceptions travel as type name, message, stack trace and inner exception, never as objects:
/// the parent rebuilds the same type when it has a message constructor, else a <see cref="RemoteException"/>.
/// </summary>
internal static class ExceptionShipper
{
    private const int MaxDepth = 8;

    public static void Write(ref MessagePackWriter writer, Exception e, int depth = 0)
    {
        writer.WriteArrayHeader(4);
        writer.Write(e.GetType().AssemblyQualifiedName ?? e.GetType().FullName);
        writer.Write(e is RemoteException r ? r.RemoteMessage : e.Message);
        writer.Write(e.StackTrace);
        if (e.InnerException is { } inner && depth < MaxDepth) Write(ref writer, inner, depth + 1);
        else writer.WriteNil();
    }

    public static Exception Read(ref MessagePackReader reader)
    {
        reader.ReadArrayHeader();
        var typeName = reader.ReadString() ?? "System.Exception";
        var message = reader.ReadString() ?? "";
        var stack = reader.ReadString();
        var inner = reader.TryReadNil() ? null : Read(ref reader);
        return Rebuild(typeName, message, stack, inner);
    }

    private static Exception Rebuild(string typeName, string message, string? stack, Exception? inner)
    {
        Exception? e = null;
        var type = SafeGetType(typeName);
        if (type is not null && typeof(Exception).IsAssignableFrom(type) && !type.IsAbstract)
        {
            try
            {
                if (inner is not null && type.GetConstructor([typeof(string), typeof(Exception)]) is { } withInner)
                    e = (Exception)withInner.Invoke([message, inner]);
                else if (type.GetConstructor([typeof(string)]) is { } plain)
                    e = (Exception)plain.Invoke([message]);
                else if (type.GetConstructor([typeof(string), typeof(Exception)]) is { } withNull)
                    e = (Exception)withNull.Invoke([message, null]);
            }
            catch (TargetInvocationException) { e = null; }
        }
        e ??= new RemoteException(ShortName(typeName), message, stack, inner);
        if (!string.IsNullOrEmpty(stack)) ExceptionDispatchInfo.SetRemoteStackTrace(e, stack + Environment.NewLine);
        return e;
    }

    private static Type? SafeGetType(string name)
    {
        try { return Type.GetType(name, throwOnError: false); }
        catch (Exception) { return null; }
    }

    private static string ShortName(string assemblyQualified)
    {
        var comma = assemblyQualified.IndexOf(", ", StringComparison.Ordinal);
        return comma < 0 ? assemblyQualified : assemblyQualified[..comma];
    }
}
