using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;

namespace Multiprocessing;

/// <summary>
/// Finds which captured variables a lambda really uses. C# puts every variable captured in one
/// scope into one closure object, shared by all the lambdas of that scope, so a lambda that
/// uses only <c>x</c> may sit on a closure that also holds the pool, a stream or a test fixture.
/// Shipping only the fields the lambda's IL (and the compiler-generated methods it calls) touches
/// is what makes closures practical to send, as cloudpickle does with a function's free variables.
/// </summary>
internal static class ClosureFields
{
    private static readonly ConcurrentDictionary<MethodInfo, HashSet<(Type, string)>?> Cache = new();
    private static readonly Dictionary<short, OperandType> Operands = typeof(OpCodes)
        .GetFields(BindingFlags.Public | BindingFlags.Static)
        .Select(f => (OpCode)f.GetValue(null)!)
        .ToDictionary(o => o.Value, o => o.OperandType);

    /// <summary>
    /// The (closure type definition, field name) pairs the method uses, or null when its IL could not
    /// be read (then every field travels).
    /// </summary>
    public static HashSet<(Type Type, string Field)>? UsedBy(MethodInfo method) => Cache.GetOrAdd(method, static m =>
    {
        var used = new HashSet<(Type, string)>();
        return Walk(m, used, new HashSet<MethodBase>(), depth: 0) ? used : null;
    });

    /// <summary>The key a closure object's fields are looked up under.</summary>
    public static Type KeyOf(Type closureType) => closureType.IsGenericType ? closureType.GetGenericTypeDefinition() : closureType;

    private static bool Walk(MethodBase method, HashSet<(Type, string)> used, HashSet<MethodBase> visited, int depth)
    {
        if (!visited.Add(method)) return true;
        if (depth > 16) return false;
        // An async or iterator lambda's body runs in its state machine's MoveNext, which reads the captures
        // (through the machine's copy of the closure); the lambda's own IL only starts the machine.
        if (method.GetCustomAttribute<System.Runtime.CompilerServices.StateMachineAttribute>() is { StateMachineType: { } machine }
            && (machine.GetMethod("MoveNext", BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic) is not { } moveNext
                || !Walk(moveNext, used, visited, depth + 1)))
            return false;
        byte[]? il;
        try { il = method.GetMethodBody()?.GetILAsByteArray(); }
        catch (Exception) { return false; }
        if (il is null) return method.IsAbstract;
        var typeArgs = method.DeclaringType is { IsGenericType: true } dt ? dt.GetGenericArguments() : null;
        var methodArgs = method.IsGenericMethod ? method.GetGenericArguments() : null;

        for (var i = 0; i < il.Length;)
        {
            short value = il[i++];
            if (value == 0xFE)
            {
                if (i >= il.Length) return false;
                value = unchecked((short)(0xFE00 | il[i++]));
            }
            if (!Operands.TryGetValue(value, out var operand)) return false;
            var size = operand switch
            {
                OperandType.InlineNone => 0,
                OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
                OperandType.InlineVar => 2,
                OperandType.InlineI8 or OperandType.InlineR => 8,
                OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il, i),
                _ => 4,
            };
            if (i + size > il.Length) return false;
            try
            {
                if (operand == OperandType.InlineField)
                {
                    var field = method.Module.ResolveField(BitConverter.ToInt32(il, i), typeArgs, methodArgs);
                    if (field?.DeclaringType is { } owner && !field.IsStatic) used.Add((KeyOf(owner), field.Name));
                }
                else if (operand == OperandType.InlineMethod)
                {
                    // Lambdas and local functions that this one calls or creates use captures too.
                    var callee = method.Module.ResolveMethod(BitConverter.ToInt32(il, i), typeArgs, methodArgs);
                    // Members of a state machine (its constructor, builder calls) hold no captures of their own: the
                    // method that owns the machine walked its MoveNext above.
                    if (callee?.DeclaringType?.Name is { } owner && (owner.Contains(">d__", StringComparison.Ordinal) || owner.EndsWith(">d", StringComparison.Ordinal))) goto next;
                    if (callee is not null && IsCompilerGenerated(callee) && !Walk(callee, used, visited, depth + 1)) return false;
                }
            }
            catch (Exception e) when (e is ArgumentException or BadImageFormatException or MissingMemberException)
            {
                return false;
            }
        next:
            i += size;
        }
        return true;
    }

    private static bool IsCompilerGenerated(MethodBase m) =>
        m.Name.StartsWith('<') || (m.DeclaringType?.Name.StartsWith('<') ?? false);
}
