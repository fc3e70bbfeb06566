using MessagePack;

namespace Multiprocessing;

/// <summary>Serves <see cref="ArrayProxy{T}"/>: a list of fixed length (Python's manager Array), with the list's get, set, count and items.</summary>
internal sealed class ServedArray(byte[][] items) : ServedObject
{
    public override ServedKind Kind => ServedKind.Array;

    public override void Handle(ManagerOp op, ref MessagePackReader args, ref MessagePackWriter reply, Guid session)
    {
        lock (items)
        {
            switch (op)
            {
                case ManagerOp.ListCount: reply.Write(items.Length); break;
                case ManagerOp.ListGet: reply.Write(items[CheckIndex(args.ReadInt32())]); break;
                case ManagerOp.ListSet:
                {
                    var index = CheckIndex(args.ReadInt32());
                    items[index] = ReadBlob(ref args);
                    break;
                }
                case ManagerOp.ListItems:
                    reply.WriteArrayHeader(items.Length);
                    foreach (var item in items) reply.Write(item);
                    break;
                default: throw Unknown(op, Kind);
            }
        }
    }

    /// <summary>Reads the items a client sent to create the array: a MessagePack array of serialized values.</summary>
    public static byte[][] ReadItems(byte[] packed)
    {
        var reader = new MessagePackReader(packed);
        var count = reader.ReadArrayHeader();
        var items = new byte[count][];
        for (var i = 0; i < count; i++) items[i] = ReadBlob(ref reader);
        return items;
    }

    private int CheckIndex(int index) =>
        (uint)index < (uint)items.Length ? index
        : throw new ArgumentOutOfRangeException(nameof(index), index,
            items.Length == 0 ? $"Index {index} is out of range: the manager's array is empty." : $"Index {index} is out of range: the manager's array has {items.Length} items, 0 to {items.Length - 1}.");
}
